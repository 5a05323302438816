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

namespace {

/// The length of the valid UTF-8 sequence at the start of `s` that is no
/// C0/C1 control character and no DEL; 0 when it must be escaped.
size_t printable_utf8_length(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto c = byte(0);
  if (c >= 0x20 && c < 0x7f)
    return 1;
  size_t n = c >= 0xc2 && c <= 0xdf   ? 2
             : c >= 0xe0 && c <= 0xef ? 3
             : c >= 0xf0 && c <= 0xf4 ? 4
                                      : 0;
  if (n == 0 || s.size() < n)
    return 0;
  for (size_t i = 1; i < n; ++i)
    if ((byte(i) & 0xc0) != 0x80)
      return 0;
  // RFC 3629 §4: no overlong form, no surrogate, nothing above U+10FFFF.
  auto second = byte(1);
  if ((c == 0xe0 && second < 0xa0) || (c == 0xed && second > 0x9f)
      || (c == 0xf0 && second < 0x90) || (c == 0xf4 && second > 0x8f))
    return 0;
  if (c == 0xc2 && second <= 0x9f) // U+0080..U+009F, the C1 controls
    return 0;
  return n;
}

void append_escaped(std::string& out, std::string_view text) {
  static const char hex[] = "0123456789abcdef";
  while (!text.empty()) {
    if (auto n = printable_utf8_length(text)) {
      out.append(text.data(), n);
      text.remove_prefix(n);
      continue;
    }
    auto c = static_cast<unsigned char>(text.front());
    text.remove_prefix(1);
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
}

} // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_escaped(out, text);
  return out;
}

std::string format_line(level lvl, std::string_view component,
                        std::string_view message) {
  std::string line;
  line.reserve(component.size() + message.size() + 16);
  line += '[';
  line += to_string(lvl);
  line += "] ";
  append_escaped(line, component);
  line += ": ";
  append_escaped(line, message);
  return line;
}

void write(level lvl, std::string_view component, std::string_view message) {
  if (lvl > max_level)
    return;
  auto line = format_line(lvl, component, message);
  std::lock_guard<std::mutex> guard{sink_mtx};
  if (current_sink)
    current_sink(lvl, line);
  else
    std::cerr << journal_prefix(lvl) << line << '\n' << std::flush;
}

} // namespace mcfg::log
