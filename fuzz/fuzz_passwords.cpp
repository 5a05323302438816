// libFuzzer target: the memcached_passwords module and its validation, on
// sources loaded by parse_source.
//
// Input: a source YAML, optionally followed by a line `---` and a second
// source (the same file after an edit).
//
// Properties, for each source that loads:
// - validate_memcached_passwords reports a problem exactly when the module
//   (init + produce) refuses, and format_status() has `refused` exactly then;
//   produce() never says "nothing";
// - content reads back, the way memcached 1.6's authfile.c reads it, to
//   exactly the users and passwords of the source: at most 8 lines, each at
//   most 255 characters with its newline, split at the first ':', the
//   password running to the newline (no '\r' or NUL cutting it short), no
//   empty or whitespace-carrying field;
// - the refusal, the problem and format_status() do not depend on the
//   passwords' bytes (all of them replaced by other bytes of the same kind
//   gives the same text), so they cannot contain a password;
// - after an edit: init(before) then handle_event for each change of
//   diff(before, after) renders exactly what init(after) renders, and a
//   change for which handle_event says "unchanged" leaves the rendering as
//   it was.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz/fuzz_common.hpp"
#include "memcached_cfg/modules/memcached_passwords.hpp"

namespace {

using mcfg::rendering;

/// How memcached 1.6's authfile.c would read `content`: user -> password,
/// or nothing when it would misread, truncate or reject the file, or a user
/// could not authenticate with what the file says.
std::optional<std::map<std::string, std::string>>
read_like_memcached(std::string_view content) {
  constexpr std::string_view whitespace = " \t\n\v\f\r";
  std::map<std::string, std::string> users;
  size_t pos = 0;
  size_t entries = 0;
  while (pos < content.size()) {
    auto nl = content.find('\n', pos);
    if (nl == std::string_view::npos)
      return std::nullopt; // last line without a newline
    auto line = content.substr(pos, nl + 1 - pos);
    pos = nl + 1;
    if (line.size() > mcfg::memcached_auth_max_line)
      return std::nullopt; // fgets into 256 bytes would cut it
    if (++entries > mcfg::memcached_auth_max_users)
      return std::nullopt; // the 9th entry and later are ignored
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return std::nullopt; // AUTHFILE_MALFORMED
    auto user = line.substr(0, colon);
    auto rest = line.substr(colon + 1);
    auto end = rest.find_first_of(std::string_view{"\n\r\0", 3});
    if (end != rest.size() - 1)
      return std::nullopt; // a '\r' or NUL cuts the password short
    auto password = rest.substr(0, end);
    if (user.empty() || password.empty())
      return std::nullopt;
    if (user.find_first_of(whitespace) != std::string_view::npos
        || password.find_first_of(whitespace) != std::string_view::npos)
      return std::nullopt; // the client's `user password` splits at spaces
    if (user.find('\0') != std::string_view::npos)
      return std::nullopt;
    if (!users.emplace(std::string{user}, std::string{password}).second)
      return std::nullopt; // a user twice
  }
  return users;
}

bool same(const rendering& x, const rendering& y) {
  return x.what() == y.what() && x.text() == y.text();
}

rendering render(const mcfg::snapshot& s) {
  mcfg::memcached_passwords m;
  m.init(s);
  return m.produce();
}

void check_source(const mcfg::snapshot& s) {
  auto problem = mcfg::validate_memcached_passwords(s);
  mcfg::memcached_passwords m;
  m.init(s);
  auto out = m.produce();
  auto status = m.format_status();
  FUZZ_CHECK(out.what() != rendering::kind::nothing);
  FUZZ_CHECK((out.what() == rendering::kind::refused) == problem.has_value());
  FUZZ_CHECK(status.count("refused") == (problem ? 1u : 0u));
  FUZZ_CHECK(status["users"] == std::to_string(s.size()));
  if (problem) {
    FUZZ_CHECK(!problem->key.empty() && !problem->message.empty());
    FUZZ_CHECK(!out.text().empty());
    FUZZ_CHECK(out.text().find(problem->key) != std::string::npos);
  } else {
    auto read = read_like_memcached(out.text());
    FUZZ_CHECK(read.has_value());
    FUZZ_CHECK(*read == mcfg_fuzz::passwords_of(s));
    FUZZ_CHECK(read->size() == s.size());
  }

  // Nothing said about the state depends on the passwords' bytes.
  auto other = mcfg_fuzz::with_other_passwords(s);
  auto other_problem = mcfg::validate_memcached_passwords(other);
  FUZZ_CHECK(other_problem == problem);
  mcfg::memcached_passwords o;
  o.init(other);
  auto other_out = o.produce();
  FUZZ_CHECK(other_out.what() == out.what());
  if (out.what() == rendering::kind::refused)
    FUZZ_CHECK(other_out.text() == out.text());
  FUZZ_CHECK(o.format_status() == status);
}

void check_edit(const mcfg::snapshot& before, const mcfg::snapshot& after) {
  mcfg::memcached_passwords m;
  m.init(before);
  auto current = m.produce();
  for (auto& change : mcfg::diff(before, after)) {
    FUZZ_CHECK(m.filter_event(change.key));
    bool changed = m.handle_event(change);
    auto next = m.produce();
    if (!changed)
      FUZZ_CHECK(same(next, current));
    current = std::move(next);
  }
  FUZZ_CHECK(same(current, render(after)));
  FUZZ_CHECK(m.format_status() == [&] {
    mcfg::memcached_passwords fresh;
    fresh.init(after);
    return fresh.format_status();
  }());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mcfg_fuzz::run_source_and_edit(data, size, check_source, check_edit);
}
