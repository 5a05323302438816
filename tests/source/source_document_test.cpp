// The source of truth as a document: flattening, schema errors with their
// positions, marks, diff, and that no password ever reaches an error.
#include <doctest/doctest.h>

#include <string>
#include <variant>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memcached_cfg/modules/memcached_passwords.hpp"
#include "memcached_cfg/source/source_document.hpp"
#include "support/temp_dir.hpp"
#include "support/user_value.hpp"

using namespace mcfg;

namespace {

using test::user;

/// The single error of parsing `text`; fails when there is none or more.
located_error only_error(const std::string& text) {
  auto r = parse_source(text, "cluster.yaml");
  REQUIRE_FALSE(r.ok());
  CHECK_FALSE(r.value.has_value());
  REQUIRE(r.errors.size() == 1);
  return r.errors.front();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("source: users flatten into one key each") {
  auto r = parse_source(
    "users:\n"
    "  alice: {password: \"s3cret\", roles: [admin, reader]}\n"
    "  bob:   {password: \"pw2\", roles: []}\n"
    "  carol:\n"
    "    password: 0123\n",
    "cluster.yaml");
  REQUIRE(r.ok());
  CHECK(r.errors.empty());
  auto& doc = *r.value;
  CHECK(doc.file == "cluster.yaml");
  snapshot expected{{"users/alice", user("s3cret", {"admin", "reader"})},
                    {"users/bob", user("pw2")},
                    // No roles: an empty list. A plain scalar stays text as
                    // written (no octal or number conversion).
                    {"users/carol", user("0123")}};
  CHECK(doc.values == expected);
  CHECK(doc.values.size() == 3);
}

TEST_CASE("source: no users, written explicitly") {
  auto r = parse_source("users: {}\n");
  REQUIRE(r.ok());
  CHECK(r.value->values.empty());
}

TEST_CASE("source: marks locate users and fields") {
  auto r = parse_source("users:\n"
                        "  alice: {password: \"s3cret\", roles: [admin]}\n"
                        "  bob:\n"
                        "    password: pw2\n",
                        "cluster.yaml");
  REQUIRE(r.ok());
  auto& doc = *r.value;
  CHECK(doc.marks.at("users") == source_mark{1, 1});
  CHECK(doc.marks.at("users/alice") == source_mark{2, 3});
  CHECK(doc.marks.at("users/alice/password") == source_mark{2, 21});
  CHECK(doc.marks.at("users/alice/roles") == source_mark{2, 38});
  CHECK(doc.marks.at("users/bob") == source_mark{3, 3});
  CHECK(doc.marks.at("users/bob/password") == source_mark{4, 15});
  CHECK(doc.marks.count("users/bob/roles") == 0);
  SUBCASE("locate uses the key's mark, else its nearest ancestor's") {
    auto e = doc.locate("users/alice/password", "expected a string");
    CHECK(e.to_string()
          == "cluster.yaml:2:21: users/alice/password: expected a string");
    auto roles = doc.locate("users/bob/roles", "x");
    CHECK(roles.line == 3);
    CHECK(roles.column == 3);
    auto whole = doc.locate("users", "too many");
    CHECK(whole.to_string() == "cluster.yaml:1:1: users: too many");
    auto nowhere = doc.locate("groups/x", "y");
    CHECK(nowhere.line == 0);
    CHECK(nowhere.to_string() == "cluster.yaml: groups/x: y");
  }
  SUBCASE("a memcached refusal located for file_store") {
    auto r2 = parse_source("users:\n"
                           "  alice: {password: \"two words\"}\n",
                           "cluster.yaml");
    REQUIRE(r2.ok());
    auto problem = validate_memcached_passwords(r2.value->values);
    REQUIRE(problem);
    auto e = r2.value->locate(problem->key, problem->message);
    CHECK(e.line == 2);
    CHECK(e.column == 21);
    CHECK(e.key == "users/alice/password");
    CHECK_FALSE(contains(e.to_string(), "two words"));
  }
}

TEST_CASE("source: a password that is not a string") {
  auto e = only_error("users:\n"
                      "  alice: {password: [s3cret], roles: [admin]}\n");
  CHECK(e.to_string()
        == "cluster.yaml:2:21: users/alice/password: expected a string, got "
           "a list");
  CHECK_FALSE(contains(e.to_string(), "s3cret"));
  auto empty = only_error("users:\n"
                          "  alice:\n"
                          "    password:\n");
  // An empty value points at its key.
  CHECK(empty.line == 3);
  CHECK(empty.column == 5);
  CHECK(empty.key == "users/alice/password");
  CHECK(empty.message == "expected a string, got nothing");
}

TEST_CASE("source: schema errors carry line, column and key") {
  struct example {
    const char* text;
    int line;
    int column;
    const char* key;
    const char* message_part;
  };
  const example examples[] = {
    {"users: [alice]\n", 1, 8, "users", "expected a mapping of users"},
    {"users:\n", 1, 1, "users", "users: {}"},
    {"users:\n  alice: s3cret\n", 2, 10, "users/alice",
     "expected a mapping with `password`"},
    {"users:\n  alice: {roles: [a]}\n", 2, 3, "users/alice/password",
     "missing field"},
    {"users:\n  alice: {password: s3cret, pasword: s3cret}\n", 2, 29,
     "users/alice/pasword", "unknown field"},
    {"users:\n  alice: {password: s3cret, roles: admin}\n", 2, 36,
     "users/alice/roles", "expected a list of role names"},
    {"users:\n  alice: {password: s3cret, roles: [admin, [x]]}\n", 2, 44,
     "users/alice/roles[1]", "expected a role name"},
    {"users:\n  alice: {password: s3cret, roles: [\"\"]}\n", 2, 37,
     "users/alice/roles[0]", "empty string"},
    {"users:\n  alice: {password: s3cret}\n  alice: {password: s3cret}\n", 3, 3,
     "users/alice", "duplicate user name"},
    {"users: {}\ngroups: {}\n", 2, 1, "groups", "unknown section"},
    {"users: {}\nusers: {}\n", 2, 1, "users", "duplicate section name"},
    {"groups: {}\n", 1, 1, "groups", "unknown section"},
    {"- users\n", 1, 1, "", "expected a mapping with `users`"},
    {"users:\n  [a]: {password: s3cret}\n", 2, 3, "users",
     "user name must be a string"},
    {"users:\n  ~: {password: s3cret}\n", 2, 3, "users",
     "user name must be a string"},
  };
  for (auto& ex : examples) {
    CAPTURE(ex.text);
    auto r = parse_source(ex.text, "cluster.yaml");
    REQUIRE_FALSE(r.ok());
    REQUIRE(!r.errors.empty());
    auto& e = r.errors.front();
    CHECK(e.file == "cluster.yaml");
    CHECK(e.line == ex.line);
    CHECK(e.column == ex.column);
    CHECK(e.key == ex.key);
    CHECK(contains(e.message, ex.message_part));
    CHECK_FALSE(contains(e.to_string(), "s3cret"));
  }
}

TEST_CASE("source: the unknown section is named, and so is what is known") {
  auto r = parse_source("users: {}\ngroups: {}\nroles: {}\n", "c.yaml");
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].to_string()
        == "c.yaml:2:1: groups: unknown section (known sections: users)");
  CHECK(r.errors[1].key == "roles");
}

TEST_CASE("source: every error is reported, and none is a document") {
  auto r = parse_source("users:\n"
                        "  alice: {password: [x]}\n"
                        "  bob: {password: ok, colour: red}\n"
                        "  carol: {password: fine}\n");
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].key == "users/alice/password");
  CHECK(r.errors[1].key == "users/bob/colour");
  CHECK_FALSE(r.value.has_value());
}

TEST_CASE("source: empty and multi-document files are refused") {
  auto empty = only_error("");
  CHECK(empty.line == 0);
  CHECK(contains(empty.message, "empty"));
  auto comments = only_error("# nothing here\n");
  CHECK(contains(comments.message, "empty"));
  auto two = only_error("users: {}\n---\nusers: {}\n");
  CHECK(two.line == 2); // where the second document starts: its `---`
  CHECK(contains(two.message, "one YAML document"));
}

TEST_CASE("source: a stray comma is refused, not looped on") {
  // YAML::LoadAll never returns on these in yaml-cpp 0.7 (found by
  // fuzz_source; fuzz/regressions/).
  for (auto text : {",", ", a", "[a],", "- a\n,"}) {
    CAPTURE(text);
    auto err = only_error(text);
    CHECK(contains(err.message, "one YAML document"));
  }
}

TEST_CASE("source: YAML syntax errors give line and column") {
  auto e = only_error("users:\n"
                      "  alice: {password: s3cret, roles: [admin\n"
                      "  bob: {password: x}\n");
  CHECK(e.line > 0);
  CHECK(e.column > 0);
  CHECK(e.key.empty());
  CHECK(contains(e.message, "invalid YAML"));
  auto tab = only_error("users: x\n\tgroups: y\n");
  CHECK(tab.line == 2);
  CHECK(tab.column == 1);
  CHECK(tab.to_string()
        == "cluster.yaml:2:1: invalid YAML: illegal tab when looking for "
           "indentation");
}

TEST_CASE("source: yaml-cpp's message never carries a fragment of a value") {
  // yaml-cpp would say "unknown escape character: Q", a piece of the password.
  auto e = only_error("users:\n  alice: {password: \"ab\\Qcd\"}\n");
  CHECK(e.line == 2);
  CHECK(e.message == "invalid YAML: unknown escape character");
  auto u = only_error("users:\n  alice: {password: \"ab\\uZZZZ\"}\n");
  CHECK_FALSE(contains(u.message, "ZZ"));
}

TEST_CASE("source: files") {
  test::temp_dir dir;
  SUBCASE("a file loads, named as given") {
    auto path = dir / "cluster.yaml";
    test::write_text(path, "users:\n  alice: {password: pw}\n");
    auto r = load_source_file(path);
    REQUIRE(r.ok());
    CHECK(r.value->file == path);
    CHECK(r.value->values.count("users/alice") == 1);
  }
  SUBCASE("errors in a file name it") {
    auto path = dir / "cluster.yaml";
    test::write_text(path, "users:\n  alice: {password: pw, x: 1}\n");
    auto r = load_source_file(path);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].to_string().rfind(path + ":2:", 0) == 0);
  }
  SUBCASE("a missing file names the path and the OS error") {
    auto path = dir / "nope.yaml";
    auto r = load_source_file(path);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].file == path);
    CHECK(r.errors[0].line == 0);
    CHECK(r.errors[0].to_string()
          == path + ": cannot read: No such file or directory");
  }
  SUBCASE("a directory is not a source") {
    auto r = load_source_file(dir.path.string());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].message
          == "cannot read: a directory, not a regular file");
  }
}

TEST_CASE("read_source_bytes: only a regular file, whole, within the cap") {
  test::temp_dir dir;
  auto path = dir / "cluster.yaml";
  auto error_of = [](const std::variant<std::string, located_error>& r) {
    auto err = std::get_if<located_error>(&r);
    return err ? err->to_string() : std::string{"<no error>"};
  };
  SUBCASE("a regular file, also through a symlink, byte for byte") {
    test::write_text(path, std::string{"users: {}\n\0tail", 15});
    auto link = dir / "link.yaml";
    REQUIRE(::symlink(path.c_str(), link.c_str()) == 0);
    for (auto& p : {path, link}) {
      auto r = read_source_bytes(p);
      REQUIRE(std::holds_alternative<std::string>(r));
      CHECK(std::get<std::string>(r) == std::string{"users: {}\n\0tail", 15});
    }
  }
  SUBCASE("a FIFO with no writer: refused at once, not waited on") {
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    CHECK(error_of(read_source_bytes(path))
          == path + ": cannot read: a FIFO, not a regular file");
  }
  SUBCASE("a symlink to /dev/zero: refused, not read") {
    REQUIRE(::symlink("/dev/zero", path.c_str()) == 0);
    CHECK(error_of(read_source_bytes(path))
          == path + ": cannot read: a character device, not a regular file");
  }
  SUBCASE("the cap: at it read, above it refused with the size") {
    test::write_text(path, std::string(64, 'x'));
    CHECK(std::holds_alternative<std::string>(read_source_bytes(path, 64)));
    CHECK(error_of(read_source_bytes(path, 63))
          == path
               + ": cannot read: the file is 64 bytes, more than the 63 bytes "
                 "a source may have");
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, max_source_bytes + 1) == 0); // sparse
    ::close(fd);
    CHECK(error_of(read_source_bytes(path))
          == path
               + ": cannot read: the file is 16777217 bytes, more than the "
                 "16 MiB a source may have");
  }
}

TEST_CASE("located_error::to_string leaves out what it does not know") {
  CHECK(located_error{"f.yaml", 4, 15, "users/a/password", "bad"}.to_string()
        == "f.yaml:4:15: users/a/password: bad");
  CHECK(located_error{"f.yaml", 4, 0, "k", "bad"}.to_string()
        == "f.yaml:4: k: bad");
  CHECK(located_error{"f.yaml", 0, 0, "", "bad"}.to_string() == "f.yaml: bad");
  CHECK(to_string(std::vector<located_error>{{"a", 1, 2, "", "x"},
                                             {"b", 0, 0, "k", "y"}})
        == "a:1:2: x\nb: k: y");
}

// -- diff ---------------------------------------------------------------------

TEST_CASE("diff: equal snapshots give nothing") {
  snapshot s{{"users/alice", user("pw", {"a"})}};
  CHECK(diff(s, s).empty());
  CHECK(diff({}, {}).empty());
}

TEST_CASE("diff: added, changed and removed keys, in key order") {
  snapshot old{{"users/alice", user("pw1")},
               {"users/bob", user("pw2", {"r"})},
               {"users/carol", user("pw3")}};
  snapshot neu{{"users/aaron", user("pw0")},
               {"users/bob", user("pw2", {"r", "w"})},
               {"users/carol", user("pw3")},
               {"users/dave", user("pw4")}};
  auto changes = diff(old, neu);
  std::vector<config_change> expected{
    {"users/aaron", user("pw0"), false},
    {"users/alice", config_value{}, true},
    {"users/bob", user("pw2", {"r", "w"}), false},
    {"users/dave", user("pw4"), false},
  };
  CHECK(changes == expected);
  // Nothing about carol, who did not change.
  for (auto& c : changes)
    CHECK(c.key != "users/carol");
}

TEST_CASE("diff: from and to nothing") {
  snapshot s{{"users/a", user("1")}, {"users/b", user("2")}};
  auto all_new = diff({}, s);
  REQUIRE(all_new.size() == 2);
  CHECK_FALSE(all_new[0].removed);
  CHECK(all_new[1].value == user("2"));
  auto all_gone = diff(s, {});
  REQUIRE(all_gone.size() == 2);
  CHECK(all_gone[0].removed);
  CHECK(all_gone[1].removed);
  CHECK(all_gone[1].key == "users/b");
}

TEST_CASE("source: a user name saved in Latin-1 is refused with line, column "
          "and key, and no user of that file is published") {
  // `josé` written as the single byte 0xE9: the status (JSON) could not
  // show it, and it is not the name meant.
  auto r = parse_source("users:\n"
                        "  alice: {password: pw1}\n"
                        "  jos\xe9: {password: hunter2, roles: [admin]}\n",
                        "cluster.yaml");
  REQUIRE_FALSE(r.ok());
  CHECK_FALSE(r.value.has_value());
  REQUIRE(r.errors.size() == 1);
  auto& e = r.errors[0];
  CHECK(e.file == "cluster.yaml");
  CHECK(e.line == 3);
  CHECK(e.column == 3);
  CHECK(e.key == "users/jos\\xE9");
  CHECK(e.message == "user name is not valid UTF-8 (save the source as UTF-8)");
  CHECK(e.to_string()
        == "cluster.yaml:3:3: users/jos\\xE9: user name is not valid UTF-8 "
           "(save the source as UTF-8)");
  CHECK_FALSE(contains(e.to_string(), "hunter2"));
}

TEST_CASE("source: section and field names that are not valid UTF-8 are "
          "refused as such") {
  auto section = only_error("users: {}\nus\xe9rs: {}\n");
  CHECK(section.line == 2);
  CHECK(section.key == "us\\xE9rs");
  CHECK(section.message
        == "section name is not valid UTF-8 (save the source as UTF-8)");
  auto field = only_error("users:\n  alice: {password: pw, r\xf4les: [a]}\n");
  CHECK(field.line == 2);
  CHECK(field.column == 25);
  CHECK(field.key == "users/alice/r\\xF4les");
  CHECK(contains(field.message, "field is not valid UTF-8"));
}

TEST_CASE("source: a user name in UTF-8 beyond ASCII is accepted") {
  auto r = parse_source("users:\n  jos\xc3\xa9: {password: pw}\n");
  REQUIRE(r.ok());
  CHECK(r.value->values.count("users/jos\xc3\xa9") == 1);
}
