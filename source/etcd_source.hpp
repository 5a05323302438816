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

/// Whether what the follower holds is proven to be the cluster's newest
/// users (ARCHITECTURE.md §6): the newest revision a leader-backed member
/// vouched for (an event of the watch, a progress notification, a
/// linearizable read finding nothing newer), and when. The follower alone
/// writes it; the registration's client, which may fail over to a healthy
/// member while the watch sits on a stale one, has no say in it.
/// Thread-safe; time is passed in, so the rule is tested without a clock.
class etcd_freshness {
public:
  using steady = std::chrono::steady_clock;
  using wall = std::chrono::system_clock;
  struct doubt {
    wall::time_point since;
    std::string why;
  };
  /// Starts as proven at `start`: the node starts from a linearizable read.
  explicit etcd_freshness(steady::time_point start = steady::now(),
                          wall::time_point start_wall = wall::now());
  /// The follower's users are etcd's as of `revision`, vouched for at `at`
  /// (`at_wall` for the status): any doubt ends.
  void proven(int64_t revision, steady::time_point at,
              wall::time_point at_wall);
  /// Why the last attempt at proof failed (endpoints and etcd's message, no
  /// secret). `known_stale`: a linearizable read showed changes the watch
  /// has not delivered, or the follower cannot read at all: doubt at once.
  void unproven(const std::string& why, bool known_stale = false);
  /// The rule: in doubt once more than `bound` has passed since the last
  /// proof, or at once when known stale. Returns whether in doubt; logs
  /// when a doubt starts.
  bool check(steady::time_point now, std::chrono::milliseconds bound);
  /// The doubt as of the last check(); none while proven fresh.
  std::optional<doubt> doubted() const;
  /// The newest revision proven, and when (0 before the follower's first).
  int64_t revision() const;
  steady::time_point proven_at() const;

private:
  mutable std::mutex mtx_;
  int64_t revision_ = 0;
  steady::time_point at_;
  wall::time_point at_wall_;
  std::string why_;
  bool known_stale_ = false;
  bool doubted_ = false;
};

/// "source not proven fresh since 2026-11-28T08:00:00Z: <why>".
std::string describe_unproven(etcd_freshness::wall::time_point since,
                              const std::string& why);

/// Since when no etcd member has answered, as the follower and the
/// registration see it; and, apart, the follower's own freshness.
/// Thread-safe.
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

  /// The follower's proof of freshness: state of its own, which
  /// succeeded() does not touch.
  etcd_freshness& freshness() {
    return freshness_;
  }
  const etcd_freshness& freshness() const {
    return freshness_;
  }

private:
  etcd_freshness freshness_;
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
