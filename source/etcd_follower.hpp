#pragma once
// The etcd backend's threads (ARCHITECTURE.md §6), plain C++ on the etcd
// client, never on a CAF scheduler worker:
//
// - etcd_follower follows `<prefix>users/`: it reads every key at one
//   revision, hands that whole state over, then watches from the next
//   revision and hands over the whole state again after each revision that
//   changed it. Compaction of the revision it watches from: a full re-read.
//   No member answering: it reports the source unreachable (the caller
//   keeps the last good version) and tries again with capped backoff.
// - etcd_registration keeps `<prefix>nodes/<name>` under a lease, kept
//   alive, holding what the node says about itself (JSON); a lease lost
//   (the node was unreachable longer than its TTL) is granted anew.
//
// Both report successes and failures to one etcd_reachability, which says
// since when the source has been unreachable.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "source/etcd_client.hpp"
#include "source/source_document.hpp"

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

class etcd_follower {
public:
  using version_handler = std::function<void(users_version)>;

  /// Starts following `<prefix>users/` on a thread of its own, calling
  /// `on_version` (on that thread) with each whole version.
  etcd_follower(client_options opts, std::string prefix,
                std::shared_ptr<etcd_reachability> reach,
                version_handler on_version);
  /// Stops and joins the thread.
  ~etcd_follower();
  etcd_follower(const etcd_follower&) = delete;
  etcd_follower& operator=(const etcd_follower&) = delete;

  /// How many full reads it made (the first, and one per compaction or
  /// outage); for tests and status.
  uint64_t full_reads() const;

private:
  void run();
  users_version read_all(int64_t& revision);

  client client_;
  std::string prefix_;
  std::shared_ptr<etcd_reachability> reach_;
  version_handler on_version_;
  client_options opts_;
  /// The users as of the last revision handed over: key -> kv.
  std::map<std::string, key_value> current_;
  std::atomic<uint64_t> full_reads_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

/// Reads the whole of `<prefix>users/` once: what a node starts from, and
/// what `mcfgctl` compares with. Throws etcd_error.
users_version read_users(client& c, const std::string& prefix,
                         int64_t revision = 0);

class etcd_registration {
public:
  /// Keeps `key` under a lease of `ttl` seconds, holding `describe()`'s
  /// JSON, on a thread of its own; calls describe() every `check_every`
  /// and writes the key when its answer changed.
  etcd_registration(client_options opts, std::string key,
                    std::chrono::seconds ttl,
                    std::shared_ptr<etcd_reachability> reach,
                    std::function<std::string()> describe,
                    std::chrono::milliseconds check_every
                    = std::chrono::milliseconds(100));
  /// Revokes the lease (the key goes at once) and joins the thread.
  ~etcd_registration();
  etcd_registration(const etcd_registration&) = delete;
  etcd_registration& operator=(const etcd_registration&) = delete;

  /// What describe() says may have changed: look now.
  void update();

  /// How many times the key was written.
  uint64_t writes() const;

  /// How many times the lease was renewed (kept alive).
  uint64_t renewals() const;

private:
  void run();

  client client_;
  std::string key_;
  std::chrono::seconds ttl_;
  std::chrono::milliseconds check_every_;
  std::shared_ptr<etcd_reachability> reach_;
  std::function<std::string()> describe_;
  client_options opts_;
  std::mutex mtx_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool poked_ = false;
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> renewals_{0};
  int64_t lease_ = 0;
  std::thread thread_;
};

} // namespace mcfg::etcd
