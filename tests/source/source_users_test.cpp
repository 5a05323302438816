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
