// A source held user by user (the etcd backend's form): each value is strict
// JSON, checked with the rules and messages a source file gets.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "memcached_cfg/source/source_document.hpp"
#include "support/user_value.hpp"

using namespace mcfg;

namespace {

user_text at(std::string name, std::string text) {
  auto where = "etcd /p/users/" + name + " at revision 7";
  return {std::move(name), std::move(text), std::move(where)};
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("source users: JSON values flatten as a file's users do") {
  auto r = parse_source_users(
    {at("alice", R"({"password": "s3cret", "roles": ["admin", "reader"]})"),
     at("bob", R"({"password": "pw2"})"),
     at("carol", R"({"password": 123, "roles": []})")},
    "etcd revision 7");
  REQUIRE(r.ok());
  CHECK(r.value->file == "etcd revision 7");
  snapshot expected{{"users/alice", test::user("s3cret", {"admin", "reader"})},
                    {"users/bob", test::user("pw2")},
                    // A number is text as written, as in a file.
                    {"users/carol", test::user("123")}};
  CHECK(r.value->values == expected);
  // The same users written as a file give the same snapshot.
  auto file = parse_source(
    "users:\n"
    "  alice: {password: s3cret, roles: [admin, reader]}\n"
    "  bob: {password: pw2}\n"
    "  carol: {password: \"123\"}\n");
  REQUIRE(file.ok());
  CHECK(file.value->values == r.value->values);
}

TEST_CASE("source users: no users is an empty document") {
  auto r = parse_source_users({}, "etcd revision 1");
  REQUIRE(r.ok());
  CHECK(r.value->values.empty());
}

TEST_CASE("source users: bad JSON is refused with the key, where and "
          "position, never the value") {
  auto r = parse_source_users(
    {at("alice", R"({"password": "s3cret", "roles": ["admin", "reader"]})"),
     at("bob", "{\"password\": \"hunter2\",\n \"roles\": [}")},
    "etcd revision 7");
  REQUIRE_FALSE(r.ok());
  CHECK_FALSE(r.value.has_value());
  REQUIRE(r.errors.size() == 1);
  auto& e = r.errors[0];
  CHECK(e.file == "etcd /p/users/bob at revision 7");
  CHECK(e.key == "users/bob");
  CHECK(e.line == 2);
  CHECK(e.column == 12);
  CHECK(contains(e.message, "not valid JSON"));
  CHECK_FALSE(contains(e.to_string(), "hunter2"));
}

TEST_CASE("source users: YAML that is not JSON is refused") {
  // Valid YAML, and a valid user in a file: but etcd values are JSON.
  auto r = parse_source_users({at("bob", "{password: pw}")}, "etcd");
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.errors.size() == 1);
  CHECK(contains(r.errors[0].message, "not valid JSON"));
}

TEST_CASE("source users: the schema's errors are the file's, per user") {
  auto r = parse_source_users(
    {at("a", R"({"password": ["x"]})"), at("b", R"({"roles": ["r"]})"),
     at("c", R"({"password": "p", "colour": "red"})"),
     at("d", R"({"password": "p", "roles": [""]})"), at("e", R"("just text")")},
    "etcd revision 7");
  REQUIRE_FALSE(r.ok());
  std::vector<std::string> keys;
  for (auto& e : r.errors)
    keys.push_back(e.key);
  CHECK(keys
        == std::vector<std::string>{"users/a/password", "users/b/password",
                                    "users/c/colour", "users/d/roles[0]",
                                    "users/e"});
  CHECK(r.errors[0].file == "etcd /p/users/a at revision 7");
  CHECK(r.errors[0].message == "expected a string, got a list");
  CHECK(r.errors[1].message == "missing field");
  CHECK(contains(r.errors[2].message, "unknown field"));
  CHECK(r.errors[4].file == "etcd /p/users/e at revision 7");
  // The same mistakes in a file give the same messages.
  auto file = parse_source("users:\n  a: {password: [x]}\n");
  REQUIRE(file.errors.size() == 1);
  CHECK(file.errors[0].message == r.errors[0].message);
}

TEST_CASE("source users: a number no double holds is refused with the key "
          "and where, the other users untouched") {
  // nlohmann reports 1e400 as out_of_range, not parse_error: it used to
  // escape the check and end the node in std::terminate.
  for (auto value : {R"({"password":"hunter2","roles":[],"n":1e400})",
                     R"({"password":"hunter2","roles":[-1e400]})",
                     R"({"password":"hunter2","roles":[1E+999999]})"}) {
    CAPTURE(value);
    std::vector<user_text> users{at("alice", R"({"password": "pw1"})"),
                                 at("bob", value)};
    source_load_result r;
    REQUIRE_NOTHROW(r = parse_source_users(users, "etcd revision 7"));
    REQUIRE_FALSE(r.ok());
    CHECK_FALSE(r.value.has_value());
    REQUIRE(r.errors.size() == 1);
    auto& e = r.errors[0];
    CHECK(e.file == "etcd /p/users/bob at revision 7");
    CHECK(e.key == "users/bob");
    CHECK(e.line == 1);
    CHECK(e.column > 1);
    CHECK(contains(e.message, "not valid JSON"));
    CHECK_FALSE(contains(e.to_string(), "hunter2"));
    CHECK_FALSE(contains(e.to_string(), "pw1"));
  }
}

TEST_CASE("source users: a number a double holds is still a valid value") {
  auto r = parse_source_users(
    {at("bob", R"({"password": "x", "roles": [1e300]})")}, "etcd revision 7");
  REQUIRE(r.ok());
  CHECK(r.value->values.count("users/bob") == 1);
}

TEST_CASE("source users: deep nesting and JSON the parser refuses in any way "
          "are refusals, never exceptions") {
  std::string deep(100000, '[');
  std::vector<user_text> users{
    at("a", deep), at("b", R"({"password": "\ud800", "roles": []})"),
    at("c", "{\"password\": \"caf\xe9\"}"), at("d", "")};
  source_load_result r;
  REQUIRE_NOTHROW(r = parse_source_users(users, "etcd revision 7"));
  REQUIRE_FALSE(r.ok());
  std::vector<std::string> keys;
  for (auto& e : r.errors)
    keys.push_back(e.key);
  CHECK(
    keys
    == std::vector<std::string>{"users/a", "users/b", "users/c", "users/d"});
}

TEST_CASE("source users: a user name that is not valid UTF-8 is refused with "
          "its bytes shown as \\xHH, and its value is not published") {
  auto r = parse_source_users({at("alice", R"({"password": "pw1"})"),
                               {"jos\xe9", R"({"password": "hunter2"})",
                                "etcd /p/users/jos\\xE9 at revision 7"}},
                              "etcd revision 7");
  REQUIRE_FALSE(r.ok());
  CHECK_FALSE(r.value.has_value());
  REQUIRE(r.errors.size() == 1);
  auto& e = r.errors[0];
  CHECK(e.file == "etcd /p/users/jos\\xE9 at revision 7");
  CHECK(e.key == "users/jos\\xE9");
  CHECK(e.line == 0);
  CHECK(e.message == "user name is not valid UTF-8 (save the source as UTF-8)");
  CHECK(is_valid_utf8(e.to_string()));
  CHECK_FALSE(contains(e.to_string(), "hunter2"));
  // Valid UTF-8 names, however far from ASCII, are names like any other.
  auto ok = parse_source_users({at("jos\xc3\xa9", R"({"password": "p"})"),
                                at("\xf0\x9f\x90\xb1", R"({"password": "p"})")},
                               "etcd revision 8");
  REQUIRE(ok.ok());
  CHECK(ok.value->values.size() == 2);
}

TEST_CASE("UTF-8: well-formed text passes, every malformed form is found and "
          "shown as \\xHH") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("jos\xc3\xa9 \xe2\x82\xac \xf4\x8f\xbf\xbf"));
  for (const char* bad :
       {"\xe9", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xf8\x88\x80\x80", "\x80", "\xff", "ab\xe2\x82"}) {
    CAPTURE(bad);
    CHECK_FALSE(is_valid_utf8(bad));
    CHECK(is_valid_utf8(escape_invalid_utf8(bad)));
  }
  CHECK(escape_invalid_utf8("jos\xe9") == "jos\\xE9");
  CHECK(escape_invalid_utf8("\xc3\xa9\xff") == "\xc3\xa9\\xFF");
  CHECK(escape_invalid_utf8("ab\xe2\x82") == "ab\\xE2\\x82");
}

TEST_CASE("source users: JSON nested deeper than the YAML reader follows is "
          "refused naming the user's key") {
  std::string deep = std::string(3000, '[') + std::string(3000, ']');
  auto r = parse_source_users({at("deep", deep)}, "etcd revision 7");
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].key == "users/deep");
  CHECK(r.errors[0].file == "etcd /p/users/deep at revision 7");
}
