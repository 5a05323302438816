#pragma once
// etcd_follower: the etcd backend's reading thread (ARCHITECTURE.md §6),
// plain C++ on the etcd client, never on a CAF scheduler worker. It follows
// `<prefix>users/`: it reads every key at one revision, hands that whole
// state over, then watches from the next revision and hands over the whole
// state again after each revision that changed it. Compaction of the
// revision it watches from: a full re-read. No member answering: it reports
// the source unreachable to its etcd_reachability (the caller keeps the last
// good version) and tries again with capped, jittered backoff.
//
// Freshness (ARCHITECTURE.md §6): a watch can be open and silent on a member
// cut off from its peers. So the follower records, in the reachability's
// etcd_freshness, each proof that its users are etcd's newest: a revision
// the watch delivers, a progress notification, a full read, or — when none
// of these came for a quarter of `stale_after` — a linearizable probe
// (client::probe_prefix, on a client of its own that fails over by
// itself) finding nothing under users/ newer than what it holds. A probe
// that twice finds newer users the watch has not delivered, or no proof
// for longer than `stale_after`, puts the source in doubt and moves the
// watch to the next member; the doubt ends with the next proof.
#include <atomic>
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

#include "memcached_cfg/etcd/client.hpp"
#include "memcached_cfg/source/etcd_source.hpp"
#include "memcached_cfg/source/source_document.hpp"

namespace mcfg::etcd {

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

  /// How often the prober looks, for a bound: a quarter of it, at least
  /// 50 ms and at most 2.5 s.
  static std::chrono::milliseconds
  probe_interval(std::chrono::milliseconds stale_after);

private:
  void run();
  /// The prober's thread: probes when nothing proved freshness recently.
  void probe_loop();
  /// The judge's thread: applies the bound, and moves a watch in doubt.
  void judge_loop();
  /// One linearizable probe against what was handed over last.
  void probe_once(int& behind);
  /// Records proof of `revision` now.
  void proven(int64_t revision);
  /// Records what was handed over: the revision and how many users.
  void held(int64_t revision, size_t count);
  /// One full read, then the watch until it ends; throws what it meets.
  void follow();
  users_version read_all(int64_t& revision);

  client client_;
  /// The prober's own, so that a probe never waits behind the watch.
  client probe_client_;
  std::string prefix_;
  std::shared_ptr<etcd_reachability> reach_;
  version_handler on_version_;
  client_options opts_;
  /// The pause after each failure, reset by each success.
  backoff waits_;
  /// The users as of the last revision handed over: key -> kv.
  std::map<std::string, key_value> current_;
  std::atomic<uint64_t> full_reads_{0};
  std::atomic<bool> stopping_{false};
  /// What was handed over last, for the prober (guarded by held_mtx_).
  std::mutex held_mtx_;
  std::condition_variable wake_prober_;
  int64_t held_revision_ = 0;
  size_t held_count_ = 0;
  std::thread thread_;
  std::thread prober_;
  std::thread judge_;
};

} // namespace mcfg::etcd
