#pragma once
// One line per event on stderr, levelled: "[warning] writer /etc/auth: ...".
// Tests swap the sink to capture lines. Callers never pass secrets here.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace mcfg::log {

enum class level { error, warning, info, debug };

const char* to_string(level x);
std::optional<level> parse_level(std::string_view name);

/// Lines above this level are dropped (default: info).
void set_level(level max);
level current_level();

/// Receives every line that passes the level; stderr when none is set.
using sink = std::function<void(level, const std::string& line)>;
/// Installs `s` and returns the previous sink.
sink set_sink(sink s);

void write(level lvl, std::string_view component, std::string_view message);

inline void error(std::string_view component, std::string_view message) {
  write(level::error, component, message);
}
inline void warning(std::string_view component, std::string_view message) {
  write(level::warning, component, message);
}
inline void info(std::string_view component, std::string_view message) {
  write(level::info, component, message);
}
inline void debug(std::string_view component, std::string_view message) {
  write(level::debug, component, message);
}

} // namespace mcfg::log
