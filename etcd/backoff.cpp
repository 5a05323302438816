#include "memcached_cfg/etcd/backoff.hpp"

#include <algorithm>

namespace mcfg::etcd {

using namespace std::chrono_literals;

backoff::backoff(std::chrono::milliseconds initial,
                 std::chrono::milliseconds max)
  : initial_(std::max(initial, 1ms)), max_(std::max(max, initial_)),
    ceiling_(initial_), rng_(std::random_device{}()) {
}

std::chrono::milliseconds backoff::next() {
  auto ceiling = ceiling_.count();
  std::uniform_int_distribution<long> pick{ceiling / 2, ceiling};
  auto wait = std::chrono::milliseconds{pick(rng_)};
  ceiling_ = std::min(ceiling_ * 2, max_);
  return wait;
}

void backoff::reset() {
  ceiling_ = initial_;
}

} // namespace mcfg::etcd
