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

// -- UTF-8 --------------------------------------------------------------------

namespace {

/// The length of the well-formed UTF-8 sequence starting at `i`, or 0 when
/// the byte there starts none (RFC 3629's table).
size_t utf8_sequence_at(std::string_view s, size_t i) {
  auto byte = [&](size_t k) {
    return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u;
  };
  auto c = byte(i);
  auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xbf) {
    return k < s.size() && byte(k) >= lo && byte(k) <= hi;
  };
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return cont(i + 1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    // E0 needs A0..BF (no overlong form), ED 80..9F (no surrogate).
    auto lo = c == 0xe0 ? 0xa0u : 0x80u;
    auto hi = c == 0xed ? 0x9fu : 0xbfu;
    return cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    // F0 needs 90..BF (no overlong form), F4 80..8F (at most U+10FFFF).
    auto lo = c == 0xf0 ? 0x90u : 0x80u;
    auto hi = c == 0xf4 ? 0x8fu : 0xbfu;
    return cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  }
  return 0;
}

} // namespace

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    auto n = utf8_sequence_at(text, i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

std::string escape_invalid_utf8(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (auto n = utf8_sequence_at(text, i); n > 0) {
      out.append(text.substr(i, n));
      i += n;
      continue;
    }
    auto c = static_cast<unsigned char>(text[i++]);
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 0xf];
  }
  return out;
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
    if (!utf8_key_ok({}, "users", name, "user name")) {
      // Refused by its name alone: its value is not looked at.
    } else if (auto bad = first_json_error(text)) {
      fail(*bad, std::string{users_prefix} + name,
           "not valid JSON (expected an object with `password` and "
           "`roles`)");
    } else if (auto root = read_document(text, "the value is empty",
                                         sanitize_yaml_message)) {
      // JSON is YAML: the schema and its messages are the file's own.
      user(YAML::Node{name}, *root);
    }
    auto result = finish(std::move(doc_));
    // What the YAML reader says of the value as a whole (e.g. nesting
    // deeper than yaml-cpp follows, in JSON that is valid) is about this
    // user: every refusal names its key.
    for (auto& e : result.errors)
      if (e.key.empty())
        e.key = std::string{users_prefix} + name;
    return result;
  }

private:
  /// Where strict JSON parsing of `text` fails, if it does: a syntax error,
  /// a number no double holds (`1e400`: nlohmann reports out_of_range, not
  /// parse_error) or anything else the parser refuses. Read with a SAX
  /// handler that keeps nothing, so no value is built and nothing throws;
  /// the parser's own message is never used, as it quotes what it read,
  /// which may be a password.
  static std::optional<source_mark> first_json_error(std::string_view text) {
    json_checker check;
    bool ok = false;
    try {
      ok = nlohmann::json::sax_parse(text, &check);
    } catch (...) {
      // Not expected from a handler that never throws; refused all the
      // same, at the start, rather than let it end the caller's thread.
      return source_mark{1, 1};
    }
    if (ok)
      return std::nullopt;
    source_mark at{1, 1};
    auto end = std::min(text.size(), check.byte > 0 ? check.byte - 1 : 0);
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

  /// Accepts every JSON event and records where parsing failed.
  struct json_checker : nlohmann::json_sax<nlohmann::json> {
    size_t byte = 0;
    bool null() override {
      return true;
    }
    bool boolean(bool) override {
      return true;
    }
    bool number_integer(number_integer_t) override {
      return true;
    }
    bool number_unsigned(number_unsigned_t) override {
      return true;
    }
    bool number_float(number_float_t, const string_t&) override {
      return true;
    }
    bool string(string_t&) override {
      return true;
    }
    bool binary(binary_t&) override {
      return true;
    }
    bool start_object(std::size_t) override {
      return true;
    }
    bool key(string_t&) override {
      return true;
    }
    bool end_object() override {
      return true;
    }
    bool start_array(std::size_t) override {
      return true;
    }
    bool end_array() override {
      return true;
    }
    bool parse_error(std::size_t position, const std::string&,
                     const nlohmann::json::exception&) override {
      byte = position;
      return false;
    }
  };

  /// A mapping key must be a non-null scalar, and unique within its map.
  bool check_key(const YAML::Node& key, const std::string& path_of_map,
                 std::set<std::string>& seen, const char* what) {
    if (!key.IsScalar()) {
      fail(mark_of(key), path_of_map,
           std::string{what} + " must be a string, got " + describe_type(key));
      return false;
    }
    if (!utf8_key_ok(mark_of(key), path_of_map, key.Scalar(), what))
      return false;
    if (!seen.insert(key.Scalar()).second) {
      fail(mark_of(key), join(path_of_map, key.Scalar()),
           std::string{"duplicate "} + what);
      return false;
    }
    return true;
  }

  /// A name must be valid UTF-8: it is shown in the status (JSON), the
  /// logs and the files' modules, and a file saved in Latin-1 would
  /// otherwise name a user other than the one meant. The key in the error
  /// shows each bad byte as `\xHH`.
  bool utf8_key_ok(source_mark at, const std::string& path_of_map,
                   const std::string& name, const char* what) {
    if (is_valid_utf8(name))
      return true;
    fail(at, join(path_of_map, escape_invalid_utf8(name)),
         std::string{what} + " is not valid UTF-8 (save the source as UTF-8)");
    return false;
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
