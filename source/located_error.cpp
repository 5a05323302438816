#include "memcached_cfg/source/located_error.hpp"

namespace mcfg {

std::string located_error::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += ':';
    out += std::to_string(line);
    if (column > 0) {
      out += ':';
      out += std::to_string(column);
    }
  }
  out += ": ";
  if (!key.empty()) {
    out += key;
    out += ": ";
  }
  out += message;
  return out;
}

std::string to_string(const std::vector<located_error>& errors) {
  std::string out;
  for (auto& err : errors) {
    if (!out.empty())
      out += '\n';
    out += err.to_string();
  }
  return out;
}

} // namespace mcfg
