#pragma once
// A `users/<name>` value as the source loader flattens it.
#include <string>
#include <vector>

#include "memcached_cfg/messages/config_change.hpp"

namespace mcfg::test {

inline config_value user(const std::string& password,
                         const std::vector<std::string>& roles = {}) {
  config_value::list lst;
  for (auto& r : roles)
    lst.emplace_back(r);
  config_value::dictionary dict;
  dict.emplace("password", config_value{password});
  dict.emplace("roles", config_value{std::move(lst)});
  return config_value{std::move(dict)};
}

} // namespace mcfg::test
