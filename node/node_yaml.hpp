#pragma once
// node.yaml's typed fields, on source/'s yaml_reader (one document, located
// errors): mappings with known keys, non-empty strings, file paths resolved
// against node.yaml's folder, durations, booleans. node_config.cpp's parser
// builds node.yaml's schema on them; each reports what it refuses at the
// value's line and column, naming the key's path (`files[1].mode`).
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>

#include <caf/timestamp.hpp>

#include "memcached_cfg/source/yaml_reader.hpp"

namespace mcfg {

class node_yaml_reader : protected yaml_reader {
protected:
  /// Reads a document shown as `display` in errors, whose relative paths
  /// resolve against `base`.
  node_yaml_reader(std::string display, std::filesystem::path base)
    : yaml_reader(std::move(display)), base_(std::move(base)) {
  }

  /// The folder relative paths resolve against.
  const std::filesystem::path& base() const {
    return base_;
  }

  using field_fn
    = std::function<void(const YAML::Node& key, const YAML::Node& value)>;

  /// `"rw"` for a scalar, `a list` for anything else: what was found
  /// instead.
  static std::string got(const YAML::Node& n);

  /// "a, b, c".
  static std::string join_names(std::initializer_list<const char*> names);

  static std::string child(const std::string& parent, const std::string& k) {
    return parent.empty() ? k : parent + "." + k;
  }

  /// Walks the mapping `node` (found at `path`), calling `on_field` for each
  /// known key; unknown, duplicate and non-scalar keys are errors. Returns
  /// false when `node` is not a mapping.
  bool walk(const YAML::Node& key_of_node, const YAML::Node& node,
            const std::string& path, std::initializer_list<const char*> known,
            const field_fn& on_field);

  /// A non-empty scalar, or an error.
  std::optional<std::string> scalar(const YAML::Node& key,
                                    const YAML::Node& value,
                                    const std::string& path, const char* what);

  /// A file's path (not a directory's, no NUL), absolute against base()
  /// and lexically normal; or an error.
  std::optional<std::string> path_value(const YAML::Node& key,
                                        const YAML::Node& value,
                                        const std::string& path);

  /// A duration longer than 0 (parse_duration), or an error.
  std::optional<caf::timespan> duration(const YAML::Node& key,
                                        const YAML::Node& value,
                                        const std::string& path);

  /// `true` or `false`, as written (no YAML 1.1 yes/no/on/off).
  void bool_value(const YAML::Node& key, const YAML::Node& value,
                  const std::string& path, bool& out);

private:
  std::filesystem::path base_;
};

} // namespace mcfg
