#pragma once
// Captures every log line for the lifetime of the object.
#include <string>
#include <vector>

#include "memcached_cfg/messages/log.hpp"

namespace mcfg::test {

struct log_capture {
  std::vector<std::string> lines;
  log::sink previous;
  log::level previous_level;

  explicit log_capture(log::level lvl = log::level::debug)
    : previous_level(log::current_level()) {
    log::set_level(lvl);
    previous = log::set_sink(
      [this](log::level, const std::string& line) { lines.push_back(line); });
  }

  ~log_capture() {
    log::set_sink(std::move(previous));
    log::set_level(previous_level);
  }

  /// How many captured lines contain `needle`.
  size_t count(const std::string& needle) const {
    size_t n = 0;
    for (auto& line : lines)
      if (line.find(needle) != std::string::npos)
        ++n;
    return n;
  }

  bool contains(const std::string& needle) const {
    return count(needle) > 0;
  }
};

} // namespace mcfg::test
