#pragma once
// The supervisor's log lines ("supervisor root: restarted child 'writer'"),
// handed to a function the program installs. The supervisor is a library of
// its own: it leaves the format and destination of its lines to the program,
// which routes them into its own log (mcfgd does, see programs/mcfgd.cpp).
// Until one is installed, lines go to stderr as "[warning] supervisor root:
// ...".
#include <functional>
#include <string_view>

namespace mcfg::sup::log {

enum class level { error, warning, info };

const char* to_string(level x);

/// Receives every line: its level, who wrote it ("supervisor root") and what.
/// Called from the supervisors' threads, one line at a time.
using handler
  = std::function<void(level, std::string_view who, std::string_view text)>;

/// Installs `h` and returns the previous handler; an empty one restores the
/// default (stderr).
handler set_handler(handler h);

void write(level lvl, std::string_view who, std::string_view text);

inline void error(std::string_view who, std::string_view text) {
  write(level::error, who, text);
}
inline void warning(std::string_view who, std::string_view text) {
  write(level::warning, who, text);
}
inline void info(std::string_view who, std::string_view text) {
  write(level::info, who, text);
}

} // namespace mcfg::sup::log
