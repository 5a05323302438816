#pragma once
// What the source of truth sends its subscribers: one whole version of the
// source, as the keys that differ from the version before (ARCHITECTURE.md §3
// "Versions").
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

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

/// One accepted version of the source: every key that differs from the
/// version before. A subscriber applies all of it or none of it, so nothing
/// it renders mixes two versions. Versions only grow; they need not be
/// consecutive (an etcd revision counts every key of the cluster).
struct config_update {
  uint64_t version = 0;
  std::vector<config_change> changes;
};

inline bool operator==(const config_update& x, const config_update& y) {
  return x.version == y.version && x.changes == y.changes;
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, config_update& x) {
  return f(caf::meta::type_name("config_update"), x.version, x.changes);
}

/// The whole source at one version: what a subscriber starts from.
struct versioned_snapshot {
  /// 0 before the first version is accepted.
  uint64_t version = 0;
  snapshot values;
};

} // namespace mcfg
