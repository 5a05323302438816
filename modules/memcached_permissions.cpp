#include "memcached_cfg/modules/memcached_permissions.hpp"
#include "memcached_cfg/modules/user_map.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

namespace mcfg {

roles_entry extract_roles(const config_value& value) {
  auto dict = caf::get_if<config_value::dictionary>(&value.get_data());
  if (dict == nullptr)
    return std::nullopt;
  std::vector<std::string> roles;
  auto i = dict->find("roles");
  if (i == dict->end())
    return roles;
  auto list = caf::get_if<config_value::list>(&i->second.get_data());
  if (list == nullptr)
    return std::nullopt;
  for (auto& x : *list) {
    auto str = caf::get_if<std::string>(&x.get_data());
    if (str == nullptr)
      return std::nullopt;
    roles.push_back(*str);
  }
  std::sort(roles.begin(), roles.end());
  roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
  return roles;
}

std::optional<key_problem>
check_permissions(const std::map<std::string, roles_entry>& users) {
  for (auto& [name, entry] : users) {
    auto key = user_map::user_key(name);
    if (name.empty())
      return key_problem{key, "empty user name"};
    if (!entry)
      return key_problem{key + "/roles", "expected a list of role names"};
    for (auto& role : *entry)
      if (role.empty())
        return key_problem{key + "/roles", "empty role name"};
  }
  return std::nullopt;
}

std::optional<key_problem>
validate_memcached_permissions(const snapshot& source) {
  auto users = user_map::users_of(source, extract_roles);
  if (auto problem = check_permissions(users))
    return problem;
  if (!render_permissions(users))
    return key_problem{"users", "a user or role name is not valid UTF-8"};
  return std::nullopt;
}

std::optional<std::string>
render_permissions(const std::map<std::string, roles_entry>& users) {
  if (check_permissions(users))
    return std::nullopt;
  // ordered_json keeps "version" first; users come in map (name) order.
  nlohmann::ordered_json doc;
  doc["version"] = memcached_permissions_version;
  auto& out_users = doc["users"] = nlohmann::ordered_json::object();
  for (auto& [name, entry] : users)
    out_users[name]["roles"] = *entry;
  try {
    return doc.dump() + '\n';
  } catch (const nlohmann::json::type_error&) {
    // dump() throws on invalid UTF-8 in a string.
    return std::nullopt;
  }
}

// -- memcached_permissions ----------------------------------------------------

void memcached_permissions::init(const snapshot& source) {
  users_ = user_map::users_of(source, extract_roles);
}

bool memcached_permissions::filter_event(const std::string& key) const {
  return user_map::is_user_key(key);
}

bool memcached_permissions::handle_event(const config_change& change) {
  return user_map::apply(users_, change, extract_roles);
}

rendering memcached_permissions::produce() const {
  if (auto problem = check_permissions(users_))
    return rendering::refused(problem->key + ": " + problem->message);
  if (auto doc = render_permissions(users_))
    return rendering::content(std::move(*doc));
  return rendering::refused("users: a user or role name is not valid UTF-8");
}

std::map<std::string, std::string>
memcached_permissions::format_status() const {
  std::map<std::string, std::string> out;
  out["users"] = std::to_string(users_.size());
  std::string names;
  for (auto& kvp : users_) {
    if (!names.empty())
      names += ',';
    names += kvp.first;
  }
  out["names"] = std::move(names);
  // Whatever produce() would refuse, so status and file never disagree.
  if (auto r = produce(); r.what() == rendering::kind::refused)
    out["refused"] = r.text();
  return out;
}

std::unique_ptr<writer_module> make_memcached_permissions() {
  return std::make_unique<memcached_permissions>();
}

} // namespace mcfg
