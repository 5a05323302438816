// libFuzzer target: the log line formatter (messages/log.hpp), which every
// logged text goes through: user names, paths, keys, error texts.
//
// Input: one byte for the level, one for the component's length (taken
// modulo what is left), the component's bytes, then the message's bytes.
// Any byte may appear in either, NUL included.
//
// Properties:
// - format_line gives exactly one line: no byte below 0x20 and no 0x7f, so
//   with its final newline it is one line of the journal, and it starts
//   with "[<level>] ", never with '<' (no forged syslog priority);
// - the line is valid UTF-8 with no C1 control (checked by a decoder of
//   this file's own, not the library's);
// - what `write` hands its sink is exactly format_line's text;
// - escape keeps printable valid UTF-8 as it is, so escaping twice changes
//   nothing more, and it grows a text at most fourfold (\xNN per byte);
// - the component's and the message's escapes are in the line, in order.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_common.hpp"
#include "memcached_cfg/messages/log.hpp"

namespace {

/// Whether `s` is valid UTF-8 (RFC 3629) holding no C0 or C1 control and
/// no DEL.
bool is_printable_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp = 0;
    size_t n = 0;
    if (c < 0x80) {
      cp = c;
      n = 1;
    } else if ((c & 0xe0) == 0xc0) {
      cp = c & 0x1f;
      n = 2;
    } else if ((c & 0xf0) == 0xe0) {
      cp = c & 0x0f;
      n = 3;
    } else if ((c & 0xf8) == 0xf0) {
      cp = c & 0x07;
      n = 4;
    } else {
      return false;
    }
    if (i + n > s.size())
      return false;
    for (size_t k = 1; k < n; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (b & 0x3f);
    }
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
      return false;
    i += n;
  }
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcfg;
  auto input = mcfg_fuzz::as_text(data, size);
  if (input.size() < 2)
    return 0;
  auto lvl = static_cast<log::level>(static_cast<unsigned char>(input[0]) % 4);
  auto left = input.substr(2);
  auto split = static_cast<unsigned char>(input[1]) % (left.size() + 1);
  auto component = left.substr(0, split);
  auto message = left.substr(split);

  auto line = log::format_line(lvl, component, message);
  for (unsigned char c : line)
    FUZZ_CHECK(c >= 0x20 && c != 0x7f);
  FUZZ_CHECK(!line.empty() && line[0] == '[');
  auto head = std::string{"["} + log::to_string(lvl) + "] ";
  FUZZ_CHECK(line.compare(0, head.size(), head) == 0);
  FUZZ_CHECK(is_printable_utf8(line));

  auto comp = log::escape(component);
  auto msg = log::escape(message);
  FUZZ_CHECK(line == head + comp + ": " + msg);
  FUZZ_CHECK(comp.size() <= 4 * component.size());
  FUZZ_CHECK(msg.size() <= 4 * message.size());
  FUZZ_CHECK(log::escape(msg) == msg);
  FUZZ_CHECK(log::escape(comp) == comp);
  if (is_printable_utf8(message))
    FUZZ_CHECK(msg == message);

  // write() hands the sink exactly that line (at every level: the level
  // filter is opened all the way).
  static bool configured = [] {
    log::set_level(log::level::debug);
    return true;
  }();
  (void)configured;
  std::string seen;
  int calls = 0;
  auto previous = log::set_sink([&](log::level, const std::string& l) {
    seen = l;
    ++calls;
  });
  log::write(lvl, component, message);
  log::set_sink(std::move(previous));
  FUZZ_CHECK(calls == 1);
  FUZZ_CHECK(seen == line);
  return 0;
}
