#pragma once
// etcd_follower: the etcd backend's reading thread (ARCHITECTURE.md §6),
// plain C++ on the etcd client, never on a CAF scheduler worker. It follows
// `<prefix>users/`: it reads every key at one revision, hands that whole
// state over, then watches from the next revision and hands over the whole
// state again after each revision that changed it. Compaction of the
// revision it watches from: a full re-read. No member answering: it reports
// the source unreachable to its etcd_reachability (the caller keeps the last
// good version) and tries again with capped backoff.
#include <atomic>
#include <chrono>
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

private:
  void run();
  /// One full read, then the watch until it ends; throws what it meets.
  void follow();
  users_version read_all(int64_t& revision);

  client client_;
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
  std::thread thread_;
};

} // namespace mcfg::etcd
