#pragma once
// One line per event on stderr, levelled: "[warning] writer /etc/auth: ...".
// When stderr is the journal (a systemd service's), each line starts with
// its syslog priority, "<4>[warning] ...", which journald strips and keeps
// as the entry's priority (`journalctl -p warning`). Tests swap the sink to
// capture lines. Callers never pass secrets here. Every component and
// message is escaped (see `escape`), so no input, a user name or a path,
// can end a line early or start one with a forged "<0>" priority.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace mcfg::log {

enum class level { error, warning, info, debug };

const char* to_string(level x);
std::optional<level> parse_level(std::string_view name);

/// The syslog priority journald files a line of level `x` under: error 3,
/// warning 4, info 6, debug 7.
int syslog_priority(level x);

/// True when stderr is the journal's stream: JOURNAL_STREAM (which systemd
/// sets for a service) names stderr's device and inode. A process that
/// inherited the variable but whose stderr was redirected is not.
bool stderr_is_journal();

/// "<3>" and so on (the level's priority) when stderr is the journal, else
/// "": for the lines a program prints to stderr itself, outside `write`.
std::string journal_prefix(level x);

/// Lines above this level are dropped (default: info).
void set_level(level max);
level current_level();

/// Receives every line that passes the level, without the journal's
/// priority prefix; stderr when none is set.
using sink = std::function<void(level, const std::string& line)>;
/// Installs `s` and returns the previous sink.
sink set_sink(sink s);

/// `text` safe for one log line: each byte below 0x20 and 0x7f (\n, \r and
/// \t as such, others as \xNN), each byte that is not part of valid UTF-8,
/// and each C1 control character (U+0080..U+009F, which terminals may
/// obey) as \xNN per byte. Valid UTF-8 otherwise stays as it is.
std::string escape(std::string_view text);

/// The line `write` emits: "[level] component: message", both escaped, no
/// newline, never starting with '<', without the journal's prefix.
std::string format_line(level lvl, std::string_view component,
                        std::string_view message);

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
