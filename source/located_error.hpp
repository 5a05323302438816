#pragma once
// Where a problem sits in a configuration file, and what a loader returns: a
// value or its located errors. Shared by the source document and node.yaml.
#include <optional>
#include <string>
#include <vector>

namespace mcfg {

/// A position in a YAML file, 1-based; 0 means unknown.
struct source_mark {
  int line = 0;
  int column = 0;
};

inline bool operator==(const source_mark& x, const source_mark& y) {
  return x.line == y.line && x.column == y.column;
}

/// A problem found in a configuration file, located as precisely as known.
struct located_error {
  /// The file as the caller named it.
  std::string file;
  /// 1-based; 0 when the problem has no position (e.g. unreadable file).
  int line = 0;
  int column = 0;
  /// What the problem is about, e.g. `users/alice/password` or
  /// `files[1].mode`; empty for the document as a whole.
  std::string key;
  /// Never contains a secret.
  std::string message;

  /// "cluster.yaml:4:15: users/alice/password: expected a string"; the
  /// position and the key are left out when unknown.
  std::string to_string() const;
};

/// One line per error.
std::string to_string(const std::vector<located_error>& errors);

/// The outcome of loading a configuration: a value, or at least one error.
template <class T>
struct load_result {
  std::optional<T> value;
  /// In document order; empty exactly when `value` is set.
  std::vector<located_error> errors;

  bool ok() const {
    return value.has_value();
  }
};

} // namespace mcfg
