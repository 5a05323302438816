#pragma once
// etcd_registration keeps `<prefix>nodes/<name>` under a lease, kept alive,
// holding what the node says about itself (JSON), on a thread of its own;
// a lease lost (the node was unreachable longer than its TTL) is granted
// anew. It reports successes and failures to the source's
// etcd_reachability. cluster_member says what to write.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "memcached_cfg/etcd/client.hpp"
#include "memcached_cfg/source/etcd_source.hpp"

namespace mcfg::etcd {

class etcd_registration {
public:
  /// Keeps `key` under a lease of `ttl` seconds, holding `describe()`'s
  /// JSON, on a thread of its own; calls describe() every `check_every`
  /// and writes the key when its answer changed.
  etcd_registration(
    client_options opts, std::string key, std::chrono::seconds ttl,
    std::shared_ptr<etcd_reachability> reach,
    std::function<std::string()> describe,
    std::chrono::milliseconds check_every = std::chrono::milliseconds(100));
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
