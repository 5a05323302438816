#pragma once
// Shared by the libFuzzer targets: the property check, the contract every
// loader result must keep, and helpers to read what the source says without
// going through the code under test. Nothing here writes a file: every
// property is checked in memory.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/source/source_document.hpp"

namespace mcfg_fuzz {

/// A property violation: say which and stop the way libFuzzer reports as a
/// crash (with the input saved as the reproducer).
[[noreturn]] inline void violated(const char* what, const char* file,
                                  int line) {
  std::fprintf(stderr, "\n*** property violated: %s\n    at %s:%d\n", what,
               file, line);
  std::fflush(stderr);
  __builtin_trap();
}

#define FUZZ_CHECK(cond)                                \
  do {                                                  \
    if (!(cond))                                        \
      ::mcfg_fuzz::violated(#cond, __FILE__, __LINE__); \
  } while (false)

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// The contract of parse_source and parse_node_config: a result, or at least
/// one error, never both; every error names the file, says something, and
/// has a sane position.
inline void check_errors_contract(bool has_result,
                                  const std::vector<mcfg::located_error>& errs,
                                  const std::string& file) {
  FUZZ_CHECK(has_result != !errs.empty());
  for (auto& e : errs) {
    FUZZ_CHECK(e.file == file);
    FUZZ_CHECK(!e.message.empty());
    FUZZ_CHECK(e.line >= 0 && e.column >= 0);
    FUZZ_CHECK(e.line > 0 || e.column == 0);
    auto text = e.to_string();
    FUZZ_CHECK(!text.empty());
    FUZZ_CHECK(text.compare(0, file.size(), file) == 0);
    FUZZ_CHECK(text.find(e.message) != std::string::npos);
  }
  auto all = mcfg::to_string(errs);
  FUZZ_CHECK(errs.empty() == all.empty());
}

/// Splits the fuzz input into the source before and after an edit: the
/// first line `---` divides them (a multi-document YAML stream, which the
/// source loader itself refuses, so no single valid source is lost).
inline std::pair<std::string_view, std::optional<std::string_view>>
split_edit(std::string_view text) {
  constexpr std::string_view sep = "\n---\n";
  auto at = text.find(sep);
  if (at == std::string_view::npos)
    return {text, std::nullopt};
  return {text.substr(0, at + 1), text.substr(at + sep.size())};
}

/// A dictionary's string field, read independently of the modules.
inline const std::string* string_field(const mcfg::config_value& v,
                                       const std::string& field) {
  auto dict = caf::get_if<mcfg::config_value::dictionary>(&v.get_data());
  if (dict == nullptr)
    return nullptr;
  auto i = dict->find(field);
  if (i == dict->end())
    return nullptr;
  return caf::get_if<std::string>(&i->second.get_data());
}

/// `users/<name>` -> password, for every user that has a string password.
inline std::map<std::string, std::string>
passwords_of(const mcfg::snapshot& s) {
  std::map<std::string, std::string> out;
  for (auto& [key, value] : s)
    if (key.compare(0, mcfg::users_prefix.size(), mcfg::users_prefix) == 0)
      if (auto pw = string_field(value, "password"))
        out.emplace(key.substr(mcfg::users_prefix.size()), *pw);
  return out;
}

/// Maps one byte of a password to a different byte of the same kind
/// (lower/upper case letter, digit, other printable, other control, high
/// byte); whitespace and NUL stay, so every check the modules make on a
/// password (empty, whitespace, NUL, length) answers the same.
inline char other_byte_of_same_kind(char ch) {
  auto c = static_cast<unsigned char>(ch);
  auto rotate = [](unsigned char x, unsigned char lo, unsigned char n) {
    return static_cast<char>(lo + (x - lo + 1) % n);
  };
  switch (c) {
    case '\0':
    case ' ':
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
      return ch;
    default:
      break;
  }
  if (c >= 'a' && c <= 'z')
    return rotate(c, 'a', 26);
  if (c >= 'A' && c <= 'Z')
    return rotate(c, 'A', 26);
  if (c >= '0' && c <= '9')
    return rotate(c, '0', 10);
  if (c >= 0x80)
    return static_cast<char>(c ^ 0x01);
  static constexpr std::string_view punct
    = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  if (auto i = punct.find(ch); i != std::string_view::npos)
    return punct[(i + 1) % punct.size()];
  // Remaining controls: 0x01..0x08, 0x0e..0x1f, 0x7f.
  static constexpr char ctrl[] = "\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f"
                                 "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19"
                                 "\x1a\x1b\x1c\x1d\x1e\x1f\x7f";
  std::string_view cs{ctrl, sizeof(ctrl) - 1};
  auto i = cs.find(ch);
  return i == std::string_view::npos ? ch : cs[(i + 1) % cs.size()];
}

/// The snapshot with every password's bytes replaced (see
/// other_byte_of_same_kind) and nothing else touched.
inline mcfg::snapshot with_other_passwords(const mcfg::snapshot& s) {
  auto out = s;
  for (auto& [key, value] : out) {
    auto dict = caf::get_if<mcfg::config_value::dictionary>(&value.get_data());
    if (dict == nullptr)
      continue;
    auto i = dict->find("password");
    if (i == dict->end())
      continue;
    if (auto pw = caf::get_if<std::string>(&i->second.get_data())) {
      std::string other = *pw;
      for (auto& c : other)
        c = other_byte_of_same_kind(c);
      i->second = mcfg::config_value{std::move(other)};
    }
  }
  return out;
}

/// The module targets' input: a source, optionally followed by `\n---\n`
/// and an edit of it. Each loaded source goes to `check_source`; a source
/// and its loaded edit go to `check_edit`.
template <class CheckSource, class CheckEdit>
int run_source_and_edit(const uint8_t* data, size_t size,
                        CheckSource check_source, CheckEdit check_edit) {
  auto [first, second] = split_edit(as_text(data, size));
  auto before = mcfg::parse_source(first, "before.yaml");
  if (before.value)
    check_source(before.value->values);
  if (!second)
    return 0;
  auto after = mcfg::parse_source(*second, "after.yaml");
  if (!after.value)
    return 0;
  check_source(after.value->values);
  if (before.value)
    check_edit(before.value->values, after.value->values);
  return 0;
}

} // namespace mcfg_fuzz
