#include "memcached_cfg/modules/memcached_passwords.hpp"
#include "memcached_cfg/modules/user_map.hpp"

#include <sstream>
#include <string_view>
#include <utility>

// What memcached 1.6 really does with its ASCII auth file, read from its
// source (github.com/memcached/memcached). Two versions matter: 1.6.18, which
// Debian 12 ships and the end-to-end tests run, and master (commit 2d51e36,
// 2026), which differs in two places noted below. Line numbers are
// authfile.c's and proto_text.c's in those versions. Every rule was also
// checked by loading files with both versions' authfile.c and, for 1.6.18,
// against the real daemon.
//
// authfile_load():
// - `MAX_ENTRY_LEN 256` (1.6.18 l.16, master l.17): each line is read with
//   fgets(..., MAX_ENTRY_LEN) (l.51 / l.60), i.e. at most 255 characters,
//   newline included. A longer line is cut: the password is truncated, and
//   since the cut leaves no newline the loop takes it for end of file
//   (`if (auth_cur[x] == '\0') break;`, l.89 / l.98) and ignores every later
//   line. So `user:password\n` must be at most 255 characters.
// - `MAX_ENTRIES 8` (l.18 / l.19), `if (++used == MAX_ENTRIES) break;`
//   (l.85 / l.94, under "FIXME: no silent truncation"): a 9th user and any
//   after it are silently ignored. So at most 8 users.
// - the user name ends at the first ':' (l.60-64 / l.69-73) and the password
//   runs to the first '\n', '\r' or '\0' (l.68-72 / l.77-81): a ':' in a user
//   name makes memcached read another user and password; ':' in a password
//   is fine; '\r' or '\n' in a password cuts it (or, in 1.6.18, makes the
//   file malformed). A line without ':' (a blank line, a NUL in a name)
//   makes the whole file AUTHFILE_MALFORMED (l.77-82 / l.86-91): at start-up
//   memcached exits, on SIGHUP it keeps the previous users.
// - empty user name or password: the file parser accepts them (ulen or plen
//   0) but the client side can never send them in 1.6.18 (below), and in
//   master an empty field would match an empty one in the payload. Refused:
//   useless at best, an open door at worst.
// - an empty file: 1.6.18 allocates st_size + 1 bytes and calls fgets with a
//   size of 0, which returns NULL at once: zero entries, AUTHFILE_OK, and no
//   client can authenticate (checked against the daemon). Master allocates
//   st_size + 2 (commit 8203c93, 1.6.32) and calls fgets with a size of 1,
//   which glibc answers with an empty string, so an empty file is
//   AUTHFILE_MALFORMED there: memcached >= 1.6.32 refuses to start with it
//   and on SIGHUP keeps the old users. We target Debian's 1.6.18 and render
//   an empty user set as an empty file, which locks everybody out there;
//   README.md ("The modules' output formats") warns about newer versions.
//
// The client side, `set <key> <flags> <ttl> <n>\r\n<user> <password>\r\n`
// (try_read_command_asciiauth in proto_text.c):
// - 1.6.18 (l.407-416): the payload goes through tokenize_command(), which
//   splits on spaces and skips empty tokens (l.279-319), and
//   authfile_check(tokens[0], tokens[1]) compares whole tokens: a space in a
//   user name or a password makes that user unable to authenticate (checked
//   against the daemon), and an empty user or password can never be sent.
// - master (l.331-339): splits at the first space only (memchr).
// Whitespace of any kind is refused in both names and passwords: a space
// breaks 1.6.18's tokens, CR and LF break the file's lines, and tabs and
// the rest are never what someone meant in a credential.

namespace mcfg {

namespace {

using user_map::is_user_key;
using user_map::user_key;

constexpr std::string_view whitespace = " \t\n\v\f\r";

bool has_whitespace(std::string_view s) {
  return s.find_first_of(whitespace) != std::string_view::npos;
}

bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

std::string refusal(const key_problem& p) {
  return p.key + ": " + p.message;
}

} // namespace

password_entry extract_password(const config_value& value) {
  auto dict = caf::get_if<config_value::dictionary>(&value.get_data());
  if (dict == nullptr)
    return std::nullopt;
  auto i = dict->find("password");
  if (i == dict->end())
    return std::nullopt;
  if (auto str = caf::get_if<std::string>(&i->second.get_data()))
    return *str;
  return std::nullopt;
}

std::optional<key_problem>
check_memcached_users(const std::map<std::string, password_entry>& users) {
  if (users.size() > memcached_auth_max_users)
    return key_problem{"users",
                       std::to_string(users.size())
                         + " users defined, but memcached reads at most "
                         + std::to_string(memcached_auth_max_users)
                         + " from its auth file and silently ignores the rest"};
  for (auto& [name, entry] : users) {
    auto key = user_key(name);
    if (name.empty())
      return key_problem{key, "empty user name: no client could ever send it "
                              "to memcached"};
    if (name.find(':') != std::string::npos)
      return key_problem{key, "user name contains ':'; memcached splits auth "
                              "file lines at the first ':', so it would read "
                              "another user and password"};
    if (has_whitespace(name))
      return key_problem{key, "user name contains whitespace; memcached "
                              "splits the client's `user password` at "
                              "spaces and its file at line ends, so this user "
                              "could never authenticate"};
    if (has_nul(name))
      return key_problem{key, "user name contains a NUL byte; memcached would "
                              "reject the whole auth file"};
    auto pw_key = key + "/password";
    if (!entry)
      return key_problem{pw_key, "expected a string password"};
    const auto& pw = *entry;
    if (pw.empty())
      return key_problem{pw_key, "empty password"};
    if (has_whitespace(pw))
      return key_problem{pw_key, "password contains whitespace; memcached "
                                 "splits the client's `user password` at "
                                 "spaces and its file at line ends, so it "
                                 "would never match"};
    if (has_nul(pw))
      return key_problem{pw_key, "password contains a NUL byte; memcached "
                                 "would cut it there"};
    // `name:password\n`
    if (name.size() + pw.size() + 2 > memcached_auth_max_line)
      return key_problem{
        key, "user name and password are too long together: memcached reads "
             "at most "
               + std::to_string(memcached_auth_max_line)
               + " characters per auth file line (name, ':', password and "
                 "newline) and would cut the password and ignore every later "
                 "user"};
  }
  return std::nullopt;
}

std::optional<key_problem>
validate_memcached_passwords(const snapshot& source) {
  return check_memcached_users(user_map::users_of(source, extract_password));
}

// -- memcached_passwords ------------------------------------------------------

void memcached_passwords::init(const snapshot& source) {
  users_ = user_map::users_of(source, extract_password);
}

bool memcached_passwords::filter_event(const std::string& key) const {
  return is_user_key(key);
}

bool memcached_passwords::handle_event(const config_change& change) {
  return user_map::apply(users_, change, extract_password);
}

rendering memcached_passwords::produce() const {
  if (auto problem = check_memcached_users(users_))
    return rendering::refused(refusal(*problem));
  std::string out;
  for (auto& [name, entry] : users_) {
    out += name;
    out += ':';
    out += *entry;
    out += '\n';
  }
  return rendering::content(std::move(out));
}

std::map<std::string, std::string> memcached_passwords::format_status() const {
  std::map<std::string, std::string> out;
  out["users"] = std::to_string(users_.size());
  std::string names;
  for (auto& kvp : users_) {
    if (!names.empty())
      names += ',';
    names += kvp.first;
  }
  out["names"] = std::move(names);
  if (auto problem = check_memcached_users(users_))
    out["refused"] = refusal(*problem);
  return out;
}

std::unique_ptr<writer_module> make_memcached_passwords() {
  return std::make_unique<memcached_passwords>();
}

std::string mask_memcached_passwords(const std::string& content) {
  std::istringstream in{content};
  std::string line;
  std::string out;
  while (std::getline(in, line))
    out += line.substr(0, line.find(':')) + ":********\n";
  return out;
}

} // namespace mcfg
