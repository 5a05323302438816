#include "memcached_cfg/source/source_document.hpp"

#include <cerrno>
#include <cstdint>
#include <set>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "memcached_cfg/source/yaml_reader.hpp"

namespace mcfg {

// -- source_document ----------------------------------------------------------

located_error source_document::locate(const std::string& key,
                                      std::string message) const {
  located_error err{file, 0, 0, key, std::move(message)};
  auto probe = key;
  for (;;) {
    if (auto i = marks.find(probe); i != marks.end()) {
      err.line = i->second.line;
      err.column = i->second.column;
      return err;
    }
    auto slash = probe.rfind('/');
    if (slash == std::string::npos)
      return err;
    probe.erase(slash);
  }
}

namespace {

/// yaml-cpp appends a fragment of the offending scalar to two of its
/// messages; a scalar may be a password, so that fragment is dropped.
std::string sanitize_yaml_message(const std::string& msg) {
  for (const char* prefix :
       {YAML::ErrorMsg::INVALID_UNICODE, YAML::ErrorMsg::INVALID_ESCAPE}) {
    std::string_view p{prefix};
    if (msg.compare(0, p.size(), p) == 0) {
      auto stripped = std::string{p};
      while (!stripped.empty()
             && (stripped.back() == ' ' || stripped.back() == ':'))
        stripped.pop_back();
      return stripped;
    }
  }
  return msg;
}

class source_parser : yaml_reader {
public:
  using yaml_reader::yaml_reader;

  source_load_result run(std::string_view text) {
    doc_.file = file();
    // An empty file is far more likely a truncated save than a wish to
    // remove every user; that must be said explicitly.
    if (auto root = read_document(text,
                                  "the document is empty; expected a mapping "
                                  "with `users` (write `users: {}` for no "
                                  "users)",
                                  sanitize_yaml_message))
      top_level(*root);
    return finish(std::move(doc_));
  }

  /// One user of a source held user by user: its value (JSON text) checked
  /// with the rules `users` applies to each of its entries.
  source_load_result run_user(const std::string& name, std::string_view text) {
    doc_.file = file();
    if (auto bad = first_json_error(text)) {
      fail(*bad, std::string{users_prefix} + name,
           "not valid JSON (expected an object with `password` and "
           "`roles`)");
    } else if (auto root = read_document(text, "the value is empty",
                                         sanitize_yaml_message)) {
      // JSON is YAML: the schema and its messages are the file's own.
      user(YAML::Node{name}, *root);
    }
    return finish(std::move(doc_));
  }

private:
  /// Where strict JSON parsing of `text` fails, if it does. (The JSON
  /// library's own message quotes what it read, which may be a password.)
  static std::optional<source_mark> first_json_error(std::string_view text) {
    try {
      auto parsed = nlohmann::json::parse(text);
      static_cast<void>(parsed);
      return std::nullopt;
    } catch (const nlohmann::json::parse_error& e) {
      source_mark at{1, 1};
      auto end = std::min(text.size(), e.byte > 0 ? e.byte - 1 : 0);
      for (size_t i = 0; i < end; ++i) {
        if (text[i] == '\n') {
          ++at.line;
          at.column = 1;
        } else {
          ++at.column;
        }
      }
      return at;
    }
  }

  /// A mapping key must be a non-null scalar, and unique within its map.
  bool check_key(const YAML::Node& key, const std::string& path_of_map,
                 std::set<std::string>& seen, const char* what) {
    if (!key.IsScalar()) {
      fail(mark_of(key), path_of_map,
           std::string{what} + " must be a string, got " + describe_type(key));
      return false;
    }
    if (!seen.insert(key.Scalar()).second) {
      fail(mark_of(key), join(path_of_map, key.Scalar()),
           std::string{"duplicate "} + what);
      return false;
    }
    return true;
  }

  static std::string join(const std::string& parent, const std::string& child) {
    return parent.empty() ? child : parent + "/" + child;
  }

  void top_level(const YAML::Node& root) {
    if (!root.IsMap()) {
      fail(mark_of(root), "",
           std::string{"expected a mapping with `users`, got "}
             + describe_type(root));
      return;
    }
    std::set<std::string> seen;
    bool have_users = false;
    for (auto it = root.begin(); it != root.end(); ++it) {
      // By value: yaml-cpp's iterator hands out a temporary pair.
      const YAML::Node key = it->first;
      if (!check_key(key, "", seen, "section name"))
        continue;
      const auto& name = key.Scalar();
      if (name == "users") {
        have_users = true;
        doc_.marks["users"] = mark_of(key);
        users(key, it->second);
      } else {
        fail(mark_of(key), name, "unknown section (known sections: users)");
      }
    }
    if (!have_users)
      fail(mark_of(root), "users",
           "missing section (write `users: {}` for no users)");
  }

  void users(const YAML::Node& key, const YAML::Node& node) {
    if (!node.IsMap()) {
      auto at = value_mark(key, node);
      fail(at, "users",
           std::string{"expected a mapping of users, got "}
             + describe_type(node)
             + (node.IsNull() ? " (write `users: {}` for no users)" : ""));
      return;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!check_key(it->first, "users", seen, "user name"))
        continue;
      user(it->first, it->second);
    }
  }

  void user(const YAML::Node& key, const YAML::Node& node) {
    const auto path = std::string{users_prefix} + key.Scalar();
    doc_.marks[path] = mark_of(key);
    if (!node.IsMap()) {
      fail(value_mark(key, node), path,
           std::string{"expected a mapping with `password` and `roles`, got "}
             + describe_type(node));
      return;
    }
    auto errors_before = error_count();
    std::set<std::string> seen;
    std::optional<std::string> password;
    config_value::list roles;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node field_key = it->first; // by value, see above
      const YAML::Node value = it->second;
      if (!check_key(field_key, path, seen, "field"))
        continue;
      const auto& field = field_key.Scalar();
      const auto field_path = path + "/" + field;
      if (field == "password") {
        doc_.marks[field_path] = value_mark(field_key, value);
        // Any scalar is text: yaml-cpp keeps it as written (`0123` stays
        // `0123`), so what the file says is what memcached gets. The value
        // itself is never echoed.
        if (value.IsScalar())
          password = value.Scalar();
        else
          fail(value_mark(field_key, value), field_path,
               std::string{"expected a string, got "} + describe_type(value));
      } else if (field == "roles") {
        doc_.marks[field_path] = value_mark(field_key, value);
        if (!value.IsSequence()) {
          fail(value_mark(field_key, value), field_path,
               std::string{"expected a list of role names, got "}
                 + describe_type(value));
          continue;
        }
        size_t index = 0;
        for (const auto& role : value) {
          if (role.IsScalar() && !role.Scalar().empty())
            roles.emplace_back(role.Scalar());
          else
            fail(mark_of(role), field_path + "[" + std::to_string(index) + "]",
                 std::string{"expected a role name, got "}
                   + (role.IsScalar() ? "an empty string"
                                      : describe_type(role)));
          ++index;
        }
      } else {
        fail(mark_of(field_key), field_path,
             "unknown field (known fields: password, roles)");
      }
    }
    if (!password && seen.count("password") == 0)
      fail(mark_of(key), path + "/password", "missing field");
    if (error_count() != errors_before || !password)
      return;
    config_value::dictionary dict;
    dict.emplace("password", config_value{std::move(*password)});
    dict.emplace("roles", config_value{std::move(roles)});
    doc_.values.emplace(path, config_value{std::move(dict)});
  }

  source_document doc_;
};

} // namespace

source_load_result parse_source(std::string_view text,
                                const std::string& file) {
  return source_parser{file}.run(text);
}

source_load_result parse_source_users(const std::vector<user_text>& users,
                                      const std::string& file) {
  source_load_result result;
  result.value = source_document{};
  result.value->file = file;
  for (auto& u : users) {
    auto one = source_parser{u.where}.run_user(u.name, u.text);
    if (!one.ok()) {
      result.errors.insert(result.errors.end(), one.errors.begin(),
                           one.errors.end());
      continue;
    }
    auto& doc = *one.value;
    result.value->values.insert(doc.values.begin(), doc.values.end());
    result.value->marks.insert(doc.marks.begin(), doc.marks.end());
  }
  if (!result.errors.empty())
    result.value.reset();
  return result;
}

namespace {

const char* file_type_name(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  if (S_ISSOCK(mode))
    return "a socket";
  return "not a regular file";
}

std::string size_text(size_t bytes) {
  if (bytes > 0 && bytes % (size_t{1} << 20) == 0)
    return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

} // namespace

std::variant<std::string, located_error>
read_source_bytes(const std::string& path, size_t max_bytes) {
  auto fail = [&](std::string message) {
    return located_error{path, 0, 0, "", std::move(message)};
  };
  auto os_fail = [&](int err) {
    return fail("cannot read: " + std::generic_category().message(err));
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return os_fail(errno);
  struct closer {
    int fd;
    ~closer() {
      ::close(fd);
    }
  } guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return os_fail(errno);
  if (!S_ISREG(st.st_mode))
    return fail(std::string{"cannot read: "} + file_type_name(st.st_mode)
                + ", not a regular file");
  auto too_big = [&](const std::string& size) {
    return fail("cannot read: the file is " + size + ", more than the "
                + size_text(max_bytes) + " a source may have");
  };
  if (static_cast<uintmax_t>(st.st_size) > max_bytes)
    return too_big(std::to_string(st.st_size) + " bytes");
  std::string text;
  text.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return os_fail(errno);
    if (n == 0)
      break;
    text.append(buf, static_cast<size_t>(n));
    // It grew while being read.
    if (text.size() > max_bytes)
      return too_big("over " + size_text(max_bytes));
  }
  return text;
}

source_load_result load_source_file(const std::string& path) {
  auto bytes = read_source_bytes(path);
  if (auto err = std::get_if<located_error>(&bytes)) {
    source_load_result result;
    result.errors.push_back(std::move(*err));
    return result;
  }
  return parse_source(std::get<std::string>(bytes), path);
}

std::vector<config_change> diff(const snapshot& old, const snapshot& neu) {
  std::vector<config_change> out;
  auto i = old.begin();
  auto j = neu.begin();
  while (i != old.end() || j != neu.end()) {
    if (j == neu.end() || (i != old.end() && i->first < j->first)) {
      out.push_back({i->first, config_value{}, true});
      ++i;
    } else if (i == old.end() || j->first < i->first) {
      out.push_back({j->first, j->second, false});
      ++j;
    } else {
      if (!(i->second == j->second))
        out.push_back({j->first, j->second, false});
      ++i;
      ++j;
    }
  }
  return out;
}

source_load_result check_source(source_load_result result,
                                const source_validator& validate) {
  if (result.ok() && validate) {
    auto problems = validate(*result.value);
    if (!problems.empty()) {
      result.value.reset();
      result.errors = std::move(problems);
    }
  }
  return result;
}

} // namespace mcfg
