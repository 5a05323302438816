#pragma once
// What every module does with the source's `users/<name>` keys: keep one
// entry per user, made from the user's value by the module's own extract
// function (a password, a role list, ...).
#include <map>
#include <string>
#include <utility>

#include "memcached_cfg/messages/config_change.hpp"

namespace mcfg::user_map {

inline bool is_user_key(const std::string& key) {
  return key.compare(0, users_prefix.size(), users_prefix) == 0;
}

inline std::string user_key(const std::string& name) {
  return std::string{users_prefix} + name;
}

/// Every user of `source`, by name.
template <class Extract>
auto users_of(const snapshot& source, Extract extract) {
  std::map<std::string, decltype(extract(config_value{}))> users;
  for (auto& [key, value] : source)
    if (is_user_key(key))
      users.emplace(key.substr(users_prefix.size()), extract(value));
  return users;
}

/// Applies one change to `users`; false when no entry changed.
template <class Entry, class Extract>
bool apply(std::map<std::string, Entry>& users, const config_change& change,
           Extract extract) {
  if (!is_user_key(change.key))
    return false;
  auto name = change.key.substr(users_prefix.size());
  if (change.removed)
    return users.erase(name) > 0;
  auto entry = extract(change.value);
  auto i = users.find(name);
  if (i == users.end()) {
    users.emplace(std::move(name), std::move(entry));
    return true;
  }
  if (i->second == entry)
    return false;
  i->second = std::move(entry);
  return true;
}

} // namespace mcfg::user_map
