#pragma once
// What the parts of an etcd source share (ARCHITECTURE.md §6): the users of
// one revision read whole (users_version, read_users), their digest, since
// when the cluster has been unreachable, which revision each published
// version came from, and the bundle of these a node hands its etcd store,
// its registration and its status.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "memcached_cfg/etcd/client.hpp"
#include "memcached_cfg/source/source_document.hpp"

namespace mcfg::etcd {

/// One revision of `<prefix>users/`, whole.
struct users_version {
  int64_t revision = 0;
  /// Every user at that revision, by name, with where errors should say it
  /// came from (key and revision).
  std::vector<user_text> users;
  /// users_digest of the keys at that revision.
  std::string digest;
};

/// A digest of which keys exist and at what mod_revision: two revisions of
/// the users with equal digests hold the same users. (Key names and
/// revisions only: it reveals no value.)
std::string users_digest(const std::map<std::string, int64_t>& mod_revisions);

/// Since when no etcd member has answered, as the follower and the
/// registration see it. Thread-safe.
class etcd_reachability {
public:
  using clock = std::chrono::system_clock;
  void succeeded();
  /// Records a failure (`why` names endpoints and etcd's message, no
  /// secret); the first of a run sets `since`.
  void failed(const std::string& why);
  /// Since when the source has been unreachable, and the latest reason;
  /// nothing while it answers.
  std::optional<std::pair<clock::time_point, std::string>> unreachable() const;

private:
  mutable std::mutex mtx_;
  std::optional<clock::time_point> since_;
  std::string why_;
};

/// "source unreachable since 2026-11-28T08:00:00Z: <why>".
std::string describe_unreachable(etcd_reachability::clock::time_point since,
                                 const std::string& why);

/// What the exception being handled says, for a log line or the status,
/// never a secret: an etcd_error's or a system_error's text; of a JSON
/// error its id, of any other exception its type only (nlohmann's and
/// yaml-cpp's texts quote what they read, which may be a password). Call
/// only inside a catch block.
std::string describe_current_exception();

/// `<prefix>users/`: where a cluster keeps its users.
std::string users_key_prefix(const std::string& prefix);

/// `kvs` (every key under `<prefix>users/`, by key) as the users of
/// `revision`, whole.
users_version to_users_version(const std::map<std::string, key_value>& kvs,
                               const std::string& prefix, int64_t revision);

/// `kvs` by key.
std::map<std::string, key_value> by_key(std::vector<key_value> kvs);

/// Reads the whole of `<prefix>users/` once: what a node starts from, and
/// what `mcfgctl` compares with. Throws etcd_error.
users_version read_users(client& c, const std::string& prefix,
                         int64_t revision = 0);

} // namespace mcfg::etcd

namespace mcfg {

/// What the node's files hold, for its registration: the etcd revision of
/// a version and the digest of its users. Thread-safe; shared by the store
/// (which records each version it publishes) and the node.
class etcd_versions {
public:
  struct entry {
    int64_t revision = 0;
    std::string digest;
  };
  /// Records that source version `version` is etcd revision `e`.
  void record(uint64_t version, entry e);
  /// The revision and digest of `version`, if recorded (the last 1024
  /// versions are kept).
  std::optional<entry> find(uint64_t version) const;

private:
  mutable std::mutex mtx_;
  std::map<uint64_t, entry> entries_;
};

/// An etcd source's parts the store, the registration and the node share.
struct etcd_source {
  etcd::client_options client;
  std::string prefix;
  std::shared_ptr<etcd_versions> versions;
  std::shared_ptr<etcd::etcd_reachability> reach;
  /// The revision read at start, and its digest.
  etcd::users_version initial;
};

} // namespace mcfg
