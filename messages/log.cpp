#include "memcached_cfg/messages/log.hpp"

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>

#include <sys/stat.h>

namespace mcfg::log {

namespace {

std::atomic<level> max_level{level::info};
std::mutex sink_mtx;
sink current_sink;

} // namespace

const char* to_string(level x) {
  switch (x) {
    case level::error:
      return "error";
    case level::warning:
      return "warning";
    case level::info:
      return "info";
    case level::debug:
      return "debug";
  }
  return "unknown";
}

std::optional<level> parse_level(std::string_view name) {
  for (auto x : {level::error, level::warning, level::info, level::debug})
    if (name == to_string(x))
      return x;
  return std::nullopt;
}

int syslog_priority(level x) {
  switch (x) {
    case level::error:
      return 3; // LOG_ERR
    case level::warning:
      return 4; // LOG_WARNING
    case level::info:
      return 6; // LOG_INFO
    case level::debug:
      return 7; // LOG_DEBUG
  }
  return 6;
}

bool stderr_is_journal() {
  // systemd.exec(5): "<device>:<inode>" of the stream, both decimal.
  auto stream = std::getenv("JOURNAL_STREAM");
  uintmax_t dev = 0;
  uintmax_t ino = 0;
  if (stream == nullptr
      || std::sscanf(stream, "%" SCNuMAX ":%" SCNuMAX, &dev, &ino) != 2)
    return false;
  struct stat st;
  return ::fstat(2, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

std::string journal_prefix(level x) {
  if (!stderr_is_journal())
    return {};
  return '<' + std::to_string(syslog_priority(x)) + '>';
}

void set_level(level max) {
  max_level = max;
}

level current_level() {
  return max_level;
}

sink set_sink(sink s) {
  std::lock_guard<std::mutex> guard{sink_mtx};
  std::swap(current_sink, s);
  return s;
}

void write(level lvl, std::string_view component, std::string_view message) {
  if (lvl > max_level)
    return;
  std::string line;
  line.reserve(component.size() + message.size() + 16);
  line += '[';
  line += to_string(lvl);
  line += "] ";
  line += component;
  line += ": ";
  line += message;
  std::lock_guard<std::mutex> guard{sink_mtx};
  if (current_sink)
    current_sink(lvl, line);
  else
    std::cerr << journal_prefix(lvl) << line << '\n' << std::flush;
}

} // namespace mcfg::log
