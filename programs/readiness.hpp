#pragma once
// Tells systemd that mcfgd is ready (sd_notify READY=1, for Type=notify)
// once every file holds the source the node started with. Until then a
// unit ordered after mcfgd does not start, and `systemctl start` waits.
// Outside systemd (no NOTIFY_SOCKET) the notification is a no-op.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <caf/fwd.hpp>

#include "memcached_cfg/supervision/child_spec.hpp"

namespace mcfg {

class readiness {
public:
  /// Starts waiting, on a thread of its own (it blocks), for every writer
  /// registered under one of `writers` to answer `sync`. A writer that is
  /// restarted meanwhile is asked again in its new incarnation.
  readiness(caf::actor_system& sys, std::vector<sup::child_id> writers);
  /// Stops waiting (within `poll`) without notifying, if not done yet.
  ~readiness();

  readiness(const readiness&) = delete;
  readiness& operator=(const readiness&) = delete;

  /// How long one sync request (or one look for a writer) may take.
  static constexpr std::chrono::milliseconds poll{500};

private:
  void wait_and_notify(caf::actor_system& sys,
                       const std::vector<sup::child_id>& writers);

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

} // namespace mcfg
