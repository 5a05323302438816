#include "memcached_cfg/supervision/log.hpp"

#include <iostream>
#include <mutex>

namespace mcfg::sup::log {

namespace {

std::mutex handler_mtx;
handler current_handler;

} // namespace

const char* to_string(level x) {
  switch (x) {
    case level::error:
      return "error";
    case level::warning:
      return "warning";
    case level::info:
      return "info";
  }
  return "unknown";
}

handler set_handler(handler h) {
  std::lock_guard<std::mutex> guard{handler_mtx};
  std::swap(current_handler, h);
  return h;
}

void write(level lvl, std::string_view who, std::string_view text) {
  // Under the lock, so that lines from supervisors on different threads do
  // not interleave and a handler is never called after it was replaced.
  std::lock_guard<std::mutex> guard{handler_mtx};
  if (current_handler)
    current_handler(lvl, who, text);
  else
    std::cerr << '[' << to_string(lvl) << "] " << who << ": " << text << '\n'
              << std::flush;
}

} // namespace mcfg::sup::log
