#pragma once
// The etcd client's wait between rounds of endpoints (client.hpp): capped
// exponential backoff with full jitter, so that clients that lost the same
// cluster do not all come back at the same instant.
#include <chrono>
#include <random>

namespace mcfg::etcd {

/// Capped exponential backoff with full jitter: the n-th wait (from 0) is
/// uniform in [initial * 2^n / 2, initial * 2^n], never above `max`.
class backoff {
public:
  backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);
  /// The next wait; each call doubles the ceiling up to the cap.
  std::chrono::milliseconds next();
  void reset();

private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds ceiling_;
  std::minstd_rand rng_;
};

} // namespace mcfg::etcd
