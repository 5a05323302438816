#include "memcached_cfg/refresh/consumer_check.hpp"

namespace mcfg {

const char* to_string(check_verdict x) {
  switch (x) {
    case check_verdict::confirmed:
      return "confirmed";
    case check_verdict::disagrees:
      return "disagrees";
    case check_verdict::unverifiable:
      return "unverifiable";
    case check_verdict::unreachable:
      return "unreachable";
  }
  return "unreachable";
}

} // namespace mcfg
