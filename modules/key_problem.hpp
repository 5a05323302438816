#pragma once
// What a module's validation says is wrong with the source: the key and why.
#include <string>

namespace mcfg {

struct key_problem {
  /// The source key at fault, e.g. `users/alice`, or `users` for the set.
  std::string key;
  /// Never contains a secret.
  std::string message;
};

inline bool operator==(const key_problem& x, const key_problem& y) {
  return x.key == y.key && x.message == y.message;
}

} // namespace mcfg
