#include "memcached_cfg/node/node_yaml.hpp"

#include <set>

#include "memcached_cfg/node/config_values.hpp"

namespace fs = std::filesystem;

namespace mcfg {

std::string node_yaml_reader::got(const YAML::Node& n) {
  if (!n.IsScalar())
    return yaml_reader::describe_type(n);
  std::string out = "\"";
  for (char c : n.Scalar()) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string
node_yaml_reader::join_names(std::initializer_list<const char*> names) {
  std::string out;
  for (auto n : names) {
    if (!out.empty())
      out += ", ";
    out += n;
  }
  return out;
}

bool node_yaml_reader::walk(const YAML::Node& key_of_node,
                            const YAML::Node& node, const std::string& path,
                            std::initializer_list<const char*> known,
                            const field_fn& on_field) {
  if (!node.IsMap()) {
    fail_value(key_of_node, node, path,
               "expected a mapping with " + join_names(known) + ", got "
                 + describe_type(node));
    return false;
  }
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // By value: yaml-cpp's iterator hands out a temporary pair.
    const YAML::Node k = it->first;
    if (!k.IsScalar()) {
      fail_at(k, path,
              std::string{"keys must be strings, got "} + describe_type(k));
      continue;
    }
    const auto& name = k.Scalar();
    if (!seen.insert(name).second) {
      fail_at(k, child(path, name), "duplicate key");
      continue;
    }
    bool is_known = false;
    for (auto x : known)
      is_known = is_known || name == x;
    if (!is_known) {
      fail_at(k, child(path, name),
              "unknown key (known: " + join_names(known) + ")");
      continue;
    }
    on_field(k, it->second);
  }
  return true;
}

std::optional<std::string> node_yaml_reader::scalar(const YAML::Node& key,
                                                    const YAML::Node& value,
                                                    const std::string& path,
                                                    const char* what) {
  if (!value.IsScalar() || value.Scalar().empty()) {
    fail_value(key, value, path,
               std::string{"expected "} + what + ", got "
                 + (value.IsScalar() ? "an empty string"
                                     : describe_type(value)));
    return std::nullopt;
  }
  return value.Scalar();
}

std::optional<std::string>
node_yaml_reader::path_value(const YAML::Node& key, const YAML::Node& value,
                             const std::string& path) {
  auto str = scalar(key, value, path, "a file path");
  if (!str)
    return std::nullopt;
  if (str->find('\0') != std::string::npos) {
    fail_value(key, value, path, "a path cannot contain a NUL byte");
    return std::nullopt;
  }
  if (str->back() == '/') {
    fail_value(key, value, path,
               "expected a file path, got a directory " + got(value));
    return std::nullopt;
  }
  fs::path p{*str};
  auto resolved = (p.is_absolute() ? p : base_ / p).lexically_normal();
  // `run/..` or `.` name a directory once normalised.
  if (!resolved.has_filename() || p.filename() == ".." || p.filename() == ".") {
    fail_value(key, value, path,
               "expected a file path, got a directory " + got(value));
    return std::nullopt;
  }
  return resolved.string();
}

std::optional<caf::timespan>
node_yaml_reader::duration(const YAML::Node& key, const YAML::Node& value,
                           const std::string& path) {
  std::optional<caf::timespan> d;
  if (value.IsScalar())
    d = parse_duration(value.Scalar());
  if (!d) {
    fail_value(key, value, path,
               "expected a duration like 100ms, 10s or 2m (units ns, us, "
               "ms, s, m, h), got "
                 + got(value));
    return std::nullopt;
  }
  if (d->count() == 0) {
    fail_value(key, value, path, "must be longer than 0");
    return std::nullopt;
  }
  return d;
}

void node_yaml_reader::bool_value(const YAML::Node& key,
                                  const YAML::Node& value,
                                  const std::string& path, bool& out) {
  if (value.IsScalar() && value.Scalar() == "true")
    out = true;
  else if (value.IsScalar() && value.Scalar() == "false")
    out = false;
  else
    fail_value(key, value, path, "expected true or false, got " + got(value));
}

} // namespace mcfg
