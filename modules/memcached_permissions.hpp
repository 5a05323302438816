#pragma once
// memcached_permissions: renders every user's roles as one JSON document
// (format in README.md), deterministic so that equal states give
// equal bytes:
//
//   {"version":1,"users":{"alice":{"roles":["admin","reader"]}}}
//
// followed by a newline. Users are sorted by name, each user's roles sorted
// and without duplicates. Passwords are never read into its state.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "memcached_cfg/actors/writer_module.hpp"
#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/modules/key_problem.hpp"

namespace mcfg {

/// The version field of the rendered document.
constexpr int memcached_permissions_version = 1;

/// One user's roles as the permissions module sees them (sorted, unique),
/// or nothing when the source value is not {roles: list of strings, ...}.
using roles_entry = std::optional<std::vector<std::string>>;

/// The roles of a `users/<name>` value; a value without `roles` has none.
roles_entry extract_roles(const config_value& value);

/// The first user (in name order) whose roles cannot be rendered.
std::optional<key_problem>
check_permissions(const std::map<std::string, roles_entry>& users);

/// The same check on a whole snapshot (its `users/` keys).
std::optional<key_problem>
validate_memcached_permissions(const snapshot& source);

/// The document for `users`, with its trailing newline; nothing when
/// check_permissions finds a problem or a name is not valid UTF-8 (which
/// JSON cannot carry).
std::optional<std::string>
render_permissions(const std::map<std::string, roles_entry>& users);

class memcached_permissions : public writer_module {
public:
  void init(const snapshot& source) override;

  /// Keys under `users/`.
  bool filter_event(const std::string& key) const override;

  /// False when the user's roles are unchanged (e.g. only the password
  /// changed, or the roles were only reordered).
  bool handle_event(const config_change& change) override;

  rendering produce() const override;

  /// `users` (count), `names` (comma-separated, sorted) and, when produce()
  /// would refuse, `refused`.
  std::map<std::string, std::string> format_status() const override;

  const std::map<std::string, roles_entry>& users() const {
    return users_;
  }

private:
  std::map<std::string, roles_entry> users_;
};

std::unique_ptr<writer_module> make_memcached_permissions();

} // namespace mcfg
