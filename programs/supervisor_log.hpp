#pragma once
// The supervisors' lines in mcfg's log: the supervision library hands its
// lines to a handler (supervision/log.hpp); a program of this project
// installs this one, so that "[warning] supervisor files: ..." reads and
// filters (--log-level) like every other line of the daemon.
#include <string_view>

#include "memcached_cfg/messages/log.hpp"
#include "memcached_cfg/supervision/log.hpp"

namespace mcfg {

inline log::level to_log_level(sup::log::level x) {
  switch (x) {
    case sup::log::level::error:
      return log::level::error;
    case sup::log::level::warning:
      return log::level::warning;
    case sup::log::level::info:
      break;
  }
  return log::level::info;
}

/// Installs the handler; returns the previous one.
inline sup::log::handler log_supervisors_to_mcfg_log() {
  return sup::log::set_handler(
    [](sup::log::level lvl, std::string_view who, std::string_view text) {
      log::write(to_log_level(lvl), who, text);
    });
}

} // namespace mcfg
