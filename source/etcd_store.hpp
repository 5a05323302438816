#pragma once
// etcd_store: the node's source of truth with the etcd backend
// (ARCHITECTURE.md §6). The same store as the file store — the
// shared source_of_truth, one version per accepted source, the same
// validation — with an etcd cluster where the file was: an etcd_follower
// (on its own thread) hands over `<prefix>users/` whole at each revision;
// one revision that changes the users is one version. A revision that does
// not validate is refused with its key and revision in the log and the
// status, and the last good version (and so every file) stays; a later
// valid revision applies. While no member answers, the files keep the last
// good version and the status says "source unreachable since ..."; while
// the follower cannot prove its users are etcd's newest (etcd_freshness:
// no proof for longer than client_options::stale_after, or a probe that
// found newer users), it says "source not proven fresh since ..." first.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "memcached_cfg/source/etcd_follower.hpp"
#include "memcached_cfg/source/etcd_source.hpp"
#include "memcached_cfg/source/source_document.hpp"
#include "memcached_cfg/source/source_of_truth.hpp"
#include "memcached_cfg/source/store.hpp"

namespace mcfg {

struct etcd_store_spec {
  etcd::client_options client;
  std::string prefix;
  std::shared_ptr<source_of_truth> truth;
  /// The same checks the file backend runs (see file_store_spec).
  source_validator validate;
  /// Where the store records each version's revision and digest.
  std::shared_ptr<etcd_versions> versions;
  /// Shared with the node's registration.
  std::shared_ptr<etcd::etcd_reachability> reach;
};

/// The store, answering reload (ok: there is nothing to re-read, the
/// watch is live; the last refusal otherwise) and status as file_store
/// does. A sync reads etcd's current revision (linearizably, off the
/// store's thread) and answers once the follower has handed that revision
/// over, so a put acknowledged before the sync counts: with the version
/// then published, the last refusal, or an error when etcd did not answer
/// or the watch did not get there within the client's retry_for plus one
/// request_timeout.
store_actor spawn_etcd_store(caf::actor_system& sys, etcd_store_spec spec);

/// Validates one whole revision of the users as the file backend validates
/// a file: the schema (parse_source_users), then `validate`.
source_load_result validate_users(const etcd::users_version& v,
                                  const source_validator& validate);

/// "etcd http://a:2379,http://b:2379 /memcached_cfg/": the source, in
/// status and logs.
std::string describe_etcd_source(const etcd::client_options& opts,
                                 const std::string& prefix);

} // namespace mcfg
