#pragma once
// memcached_passwords: renders memcached 1.6's ASCII auth file (`memcached -Y
// FILE`): one `user:password` line per user, sorted by user name, each
// terminated by a newline. An empty user set renders as an empty file.
//
// memcached reads that file with a small, unforgiving parser (authfile.c)
// and silently drops or misreads what it cannot handle; every such state is
// refused here instead, so the last good file stays in place. The limits and
// where they come from are documented in memcached_passwords.cpp.
//
// No message, status or log line made here ever contains a password.
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "memcached_cfg/actors/writer_module.hpp"
#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/modules/key_problem.hpp"

namespace mcfg {

/// memcached's authfile.c: MAX_ENTRIES.
constexpr size_t memcached_auth_max_users = 8;
/// memcached's authfile.c reads lines with fgets into MAX_ENTRY_LEN (256)
/// bytes: at most 255 characters per line, newline included.
constexpr size_t memcached_auth_max_line = 255;

/// One user's entry as the passwords module sees it: the password, or
/// nothing when the source value carries no usable string password.
using password_entry = std::optional<std::string>;

/// The first reason memcached would misread `users` (user name -> entry),
/// checking users in name order; nothing when the file is fine.
std::optional<key_problem>
check_memcached_users(const std::map<std::string, password_entry>& users);

/// The same check on a whole snapshot (its `users/` keys), for refusing an
/// edit of the source before any writer sees it.
std::optional<key_problem> validate_memcached_passwords(const snapshot& source);

/// The password of a `users/<name>` value ({password: string, ...}), if it
/// has one.
password_entry extract_password(const config_value& value);

class memcached_passwords : public writer_module {
public:
  void init(const snapshot& source) override;

  /// Keys under `users/`.
  bool filter_event(const std::string& key) const override;

  /// False when the user's password (the only thing this file holds) is
  /// unchanged, e.g. when only roles changed.
  bool handle_event(const config_change& change) override;

  /// The file; refused when memcached would misread it.
  rendering produce() const override;

  /// `users` (count), `names` (comma-separated, sorted) and, when produce()
  /// would refuse, `refused` with the reason. Never a password.
  std::map<std::string, std::string> format_status() const override;

  const std::map<std::string, password_entry>& users() const {
    return users_;
  }

private:
  std::map<std::string, password_entry> users_;
};

std::unique_ptr<writer_module> make_memcached_passwords();

/// The file's `user:password` lines with each password replaced by
/// `********`, for `mcfgd --check`.
std::string mask_memcached_passwords(const std::string& content);

} // namespace mcfg
