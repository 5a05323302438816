#include "memcached_cfg/messages/writer_status.hpp"

namespace mcfg {

const char* to_string(writer_phase x) {
  switch (x) {
    case writer_phase::idle:
      return "idle";
    case writer_phase::pending:
      return "pending";
    case writer_phase::retrying:
      return "retrying";
  }
  return "unknown";
}

} // namespace mcfg
