#pragma once
// What the source of truth sends its subscribers: one key's new value.
#include <map>
#include <string>
#include <string_view>

#include <caf/config_value.hpp>
#include <caf/meta/type_name.hpp>

namespace mcfg {

/// Values are CAF's own variant (integer, boolean, string, list, dictionary,
/// ...): the C++ counterpart of the Erlang terms ns_config hands out, and
/// serializable as it is.
using config_value = caf::config_value;

/// The whole source of truth, flattened into keys such as `users/alice`.
using snapshot = std::map<std::string, config_value>;

/// The key prefix of users in the flattened source: `users/<name>`.
constexpr std::string_view users_prefix = "users/";

/// One key of the source of truth changed; `removed` means it is gone and
/// `value` carries nothing.
struct config_change {
  std::string key;
  config_value value;
  bool removed = false;
};

inline bool operator==(const config_change& x, const config_change& y) {
  return x.key == y.key && x.removed == y.removed && x.value == y.value;
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, config_change& x) {
  return f(caf::meta::type_name("config_change"), x.key, x.value, x.removed);
}

} // namespace mcfg
