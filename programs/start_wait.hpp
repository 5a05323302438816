#pragma once
// mcfgd's start when its etcd source does not answer (docs/install.md,
// "Boot order"): an etcd that is down, has no leader or is not reachable yet
// is not bad configuration. The node then serves its control API, leaves
// every file as it is, and reads the source again with capped, jittered
// backoff until etcd answers, saying so in status, /healthz (503) and
// systemd's STATUS=. SIGINT or SIGTERM ends the wait at once (exit 0);
// SIGHUP tries again now.
#include <chrono>
#include <csignal>
#include <mutex>
#include <optional>

#include "memcached_cfg/messages/node_status.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/node_tree.hpp"

namespace mcfg {

/// What the node shows as its source while it waits: read by the control
/// actor (any thread), set by the wait. Thread-safe.
class startup_note {
public:
  using clock = std::chrono::steady_clock;
  /// Shows `source` (its `unreachable` says why) until clear(), with the
  /// time left until `next_try`.
  void set(source_status source, clock::time_point next_try);
  void clear();
  /// The source as status shows it while the node waits; nothing after
  /// clear() (or before any set()).
  std::optional<source_status> get() const;

private:
  mutable std::mutex mtx_;
  std::optional<source_status> source_;
  clock::time_point next_try_;
};

/// The waits between reads of a source that did not answer: capped,
/// jittered backoff (etcd/backoff.hpp) from 1s up to 30s.
constexpr std::chrono::seconds start_retry_initial{1};
constexpr std::chrono::seconds start_retry_max{30};

/// Reads `cfg`'s etcd source until etcd answers, starting from `first`,
/// the read that found it unreachable. Takes SIGINT, SIGTERM and SIGHUP
/// (which `signals` holds, blocked in every thread) meanwhile. Returns the
/// first read that is not "unreachable" (the source, or errors that can
/// never work, which are bad configuration); nothing when SIGINT or SIGTERM
/// asked the node to stop first. Tells systemd READY=1 at the first failure
/// when every file exists from an earlier run (memcached may start on
/// them), never otherwise.
std::optional<node_source_read> wait_for_source(const node_config& cfg,
                                                node_source_read first,
                                                const sigset_t& signals,
                                                startup_note& note);

} // namespace mcfg
