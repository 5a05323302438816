#include "memcached_cfg/messages/duration.hpp"

namespace mcfg {

std::string format_duration(caf::timespan d) {
  auto n = d.count();
  if (n != 0 && n % 1'000'000'000 == 0)
    return std::to_string(n / 1'000'000'000) + "s";
  if (n != 0 && n % 1'000'000 == 0)
    return std::to_string(n / 1'000'000) + "ms";
  if (n != 0 && n % 1'000 == 0)
    return std::to_string(n / 1'000) + "us";
  return std::to_string(n) + "ns";
}

} // namespace mcfg
