#include "memcached_cfg/messages/node_status.hpp"

namespace mcfg {

const char* to_string(sync_basis x) {
  switch (x) {
    case sync_basis::applied:
      return "applied";
    case sync_basis::confirmed:
      return "confirmed";
    case sync_basis::unverifiable:
      return "unverifiable";
  }
  return "applied";
}

} // namespace mcfg
