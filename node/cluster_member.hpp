#pragma once
// A node's membership in an etcd cluster (ARCHITECTURE.md §6): it keeps
// `<prefix>nodes/<name>` under a lease, holding what the node's files hold
// and whether it is healthy, for `mcfgctl cluster status` and `mcfgctl sync
// --cluster`:
//
//   {"name": "node1", "revision": 42, "digest": "<sha256>", "version": 3,
//    "healthy": true, "synced": true}
//
// and, while the node cannot prove its users are the cluster's newest,
// `"healthy": false` and `"source": "source not proven fresh since ..."`.
// `revision` is the etcd revision of the source version every file holds,
// `digest` the digest of its users' keys and mod revisions (so a reader can
// tell whether a later revision holds the same users); `synced`: no file
// owes a write and no refresh is pending. Looked at every 100 ms on the
// registration's own thread; written when it changes.
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "memcached_cfg/node/etcd_registration.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/node_tree.hpp"

namespace mcfg {

class cluster_member {
public:
  cluster_member(caf::actor_system& sys, const node_config& cfg,
                 const node_source& src,
                 std::shared_ptr<source_of_truth> truth);
  ~cluster_member();
  cluster_member(const cluster_member&) = delete;
  cluster_member& operator=(const cluster_member&) = delete;

  /// The key it keeps.
  const std::string& key() const {
    return key_;
  }

private:
  std::string describe();

  caf::actor_system& sys_;
  node_config cfg_;
  std::shared_ptr<etcd_source> etcd_;
  std::shared_ptr<source_of_truth> truth_;
  std::string key_;
  /// The revision and digest last known to be in every file.
  std::optional<etcd_versions::entry> held_;
  /// The revision last known to be enforced by every checked file's
  /// consumer (files with node.yaml `verify`).
  std::optional<int64_t> confirmed_;
  std::unique_ptr<etcd::etcd_registration> registration_;
};

} // namespace mcfg
