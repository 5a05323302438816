// The callback modules as plain code: every refusal rule of the memcached
// auth file, rendering, event handling and status, and the permissions JSON.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "memcached_cfg/modules/memcached_passwords.hpp"
#include "memcached_cfg/modules/memcached_permissions.hpp"
#include "memcached_cfg/modules/module_table.hpp"
#include "support/user_value.hpp"

using namespace mcfg;

namespace {

using test::user;

config_change change(const std::string& key, config_value value) {
  return {key, std::move(value), false};
}

config_change removal(const std::string& key) {
  return {key, config_value{}, true};
}

std::string content_of(const writer_module& m) {
  auto r = m.produce();
  REQUIRE(r.what() == rendering::kind::content);
  return r.text();
}

/// The refusal reason; fails the test when produce() renders instead.
std::string refusal_of(const writer_module& m) {
  auto r = m.produce();
  REQUIRE(r.what() == rendering::kind::refused);
  return r.text();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// A passwords module holding exactly `name` -> `password`.
memcached_passwords one_user(const std::string& name,
                             const std::string& password) {
  memcached_passwords m;
  m.init({{"users/" + name, user(password)}});
  return m;
}

/// Checks that a single user is refused, with `key` and without `secret`
/// anywhere in the reason, the status or the validation result.
void check_refused(const std::string& name, const std::string& password,
                   const std::string& key, const std::string& secret) {
  CAPTURE(key);
  auto m = one_user(name, password);
  auto reason = refusal_of(m);
  CHECK(reason.rfind(key + ": ", 0) == 0);
  CHECK_FALSE(contains(reason, secret));
  auto status = m.format_status();
  REQUIRE(status.count("refused") == 1);
  CHECK(status["refused"] == reason);
  for (auto& kvp : status)
    CHECK_FALSE(contains(kvp.second, secret));
  auto problem = validate_memcached_passwords(
    {{"users/" + name, user(password)}});
  REQUIRE(problem.has_value());
  CHECK(problem->key == key);
  CHECK(reason == problem->key + ": " + problem->message);
  CHECK_FALSE(contains(problem->message, secret));
}

} // namespace

// -- memcached_passwords: rendering -------------------------------------------

TEST_CASE("passwords: one sorted, newline-terminated user:password line each") {
  memcached_passwords m;
  m.init({{"users/carol", user("pw-carol", {"reader"})},
          {"users/alice", user("pw-alice", {"admin", "reader"})},
          {"users/bob", user("pw-bob")},
          {"groups/admins", config_value{std::string{"x"}}}});
  auto text = content_of(m);
  CHECK(text == "alice:pw-alice\nbob:pw-bob\ncarol:pw-carol\n");
  // Roles and unrelated keys are none of this file's business.
  CHECK_FALSE(contains(text, "admin"));
  CHECK_FALSE(contains(text, "groups"));
}

TEST_CASE("passwords: an empty user set renders as an empty file") {
  memcached_passwords m;
  m.init({});
  auto r = m.produce();
  // content, not `nothing`: the old file must be replaced, locking everyone
  // out (memcached 1.6.18 accepts an empty auth file).
  CHECK(r.what() == rendering::kind::content);
  CHECK(r.text().empty());
  m.init({{"users/alice", user("pw")}});
  CHECK(content_of(m) == "alice:pw\n");
  CHECK(m.handle_event(removal("users/alice")));
  CHECK(content_of(m).empty());
}

TEST_CASE("passwords: init replaces the whole state") {
  memcached_passwords m;
  m.init({{"users/alice", user("a1")}, {"users/bob", user("b1")}});
  m.init({{"users/bob", user("b2")}});
  CHECK(content_of(m) == "bob:b2\n");
  CHECK(m.users().count("alice") == 0);
}

TEST_CASE("passwords: filter_event takes keys under users/ only") {
  memcached_passwords m;
  CHECK(m.filter_event("users/alice"));
  CHECK(m.filter_event("users/"));
  CHECK_FALSE(m.filter_event("users"));
  CHECK_FALSE(m.filter_event("user/alice"));
  CHECK_FALSE(m.filter_event("usersx/alice"));
  CHECK_FALSE(m.filter_event("groups/users/alice"));
  CHECK_FALSE(m.filter_event(""));
}

TEST_CASE("passwords: handle_event reports whether the file changes") {
  memcached_passwords m;
  m.init({{"users/alice", user("pw1", {"reader"})}});
  SUBCASE("the same value is no change") {
    CHECK_FALSE(m.handle_event(change("users/alice", user("pw1", {"reader"}))));
    CHECK(content_of(m) == "alice:pw1\n");
  }
  SUBCASE("a roles-only change is no change to this file") {
    CHECK_FALSE(m.handle_event(change("users/alice", user("pw1", {"admin"}))));
    CHECK(content_of(m) == "alice:pw1\n");
  }
  SUBCASE("a new password is a change") {
    CHECK(m.handle_event(change("users/alice", user("pw2", {"reader"}))));
    CHECK(content_of(m) == "alice:pw2\n");
    CHECK_FALSE(m.handle_event(change("users/alice", user("pw2"))));
  }
  SUBCASE("a new user is a change, once") {
    CHECK(m.handle_event(change("users/aaron", user("pw0"))));
    CHECK_FALSE(m.handle_event(change("users/aaron", user("pw0"))));
    CHECK(content_of(m) == "aaron:pw0\nalice:pw1\n");
  }
  SUBCASE("removing a user is a change; removing an unknown one is not") {
    CHECK(m.handle_event(removal("users/alice")));
    CHECK_FALSE(m.handle_event(removal("users/alice")));
    CHECK_FALSE(m.handle_event(removal("users/nobody")));
    CHECK(content_of(m).empty());
  }
  SUBCASE("a key outside users/ changes nothing") {
    CHECK_FALSE(m.handle_event(change("groups/alice", user("other"))));
    CHECK(content_of(m) == "alice:pw1\n");
    CHECK(m.users().size() == 1);
  }
}

// -- memcached_passwords: refusals --------------------------------------------

TEST_CASE("passwords: 8 users render, a 9th is refused") {
  snapshot s;
  for (int i = 1; i <= 8; ++i)
    s.emplace("users/u" + std::to_string(i),
              user("secret-" + std::to_string(i)));
  memcached_passwords m;
  m.init(s);
  auto text = content_of(m);
  CHECK(std::count(text.begin(), text.end(), '\n') == 8);
  CHECK_FALSE(validate_memcached_passwords(s).has_value());
  CHECK(m.handle_event(change("users/u9", user("secret-9"))));
  auto reason = refusal_of(m);
  CHECK(reason.rfind("users: 9 users defined", 0) == 0);
  CHECK(contains(reason, "at most 8"));
  CHECK_FALSE(contains(reason, "secret-"));
  s.emplace("users/u9", user("secret-9"));
  auto problem = validate_memcached_passwords(s);
  REQUIRE(problem);
  CHECK(problem->key == "users");
  // Back to 8: renders again.
  CHECK(m.handle_event(removal("users/u3")));
  CHECK(content_of(m).find("u3:") == std::string::npos);
}

TEST_CASE("passwords: ':' in a user name is refused, in a password it is not") {
  check_refused("ali:ce", "Pw-SECRET", "users/ali:ce", "Pw-SECRET");
  CHECK(contains(refusal_of(one_user("ali:ce", "x")), "':'"));
  auto m = one_user("alice", "pa:ss");
  CHECK(content_of(m) == "alice:pa:ss\n");
}

TEST_CASE("passwords: whitespace in a user name is refused") {
  for (std::string name : {"al ice", "al\tice", "alice\n", "\ralice", " "}) {
    CAPTURE(name);
    check_refused(name, "Pw-SECRET", "users/" + name, "Pw-SECRET");
  }
  CHECK(contains(refusal_of(one_user("al ice", "x")), "whitespace"));
}

TEST_CASE("passwords: whitespace in a password is refused, naming the field") {
  for (std::string pw : {"SECRET PART", "SECRET\tPART", "SECRET\nPART",
                         "SECRET\rPART", "SECRETPART\n", " SECRETPART"}) {
    CAPTURE(pw.size());
    check_refused("alice", pw, "users/alice/password", "SECRET");
  }
  CHECK(contains(refusal_of(one_user("alice", "a b")), "whitespace"));
}

TEST_CASE("passwords: empty names and passwords are refused") {
  check_refused("", "Pw-SECRET", "users/", "Pw-SECRET");
  check_refused("alice", "", "users/alice/password", "\x01");
  CHECK(contains(refusal_of(one_user("", "x")), "empty user name"));
  CHECK(contains(refusal_of(one_user("alice", "")), "empty password"));
}

TEST_CASE("passwords: NUL bytes are refused") {
  check_refused(std::string{"al\0ice", 6}, "Pw-SECRET",
                "users/" + std::string{"al\0ice", 6}, "Pw-SECRET");
  check_refused("alice", std::string{"SECRET\0X", 8}, "users/alice/password",
                "SECRET");
}

TEST_CASE("passwords: a line longer than 255 characters is refused") {
  // `name:password\n` may take 255 characters: 253 for name and password.
  std::string name = "alice";
  std::string fits(253 - name.size(), 'p');
  auto m = one_user(name, fits);
  auto text = content_of(m);
  CHECK(text.size() == 255);
  CHECK(text.back() == '\n');
  std::string too_long(254 - name.size(), 'p');
  check_refused(name, too_long, "users/alice", too_long);
  CHECK(contains(refusal_of(one_user(name, too_long)), "255"));
  // The limit counts the name, too.
  check_refused(std::string(250, 'n'), "pppp", "users/" + std::string(250, 'n'),
                "pppp");
}

TEST_CASE("passwords: a value without a string password is refused") {
  memcached_passwords m;
  config_value::dictionary no_password;
  no_password.emplace("roles", config_value{config_value::list{}});
  config_value::dictionary int_password;
  int_password.emplace("password", config_value{int64_t{1234}});
  for (auto value : {config_value{no_password}, config_value{int_password},
                     config_value{std::string{"just-a-string"}}}) {
    m.init({{"users/alice", value}});
    auto reason = refusal_of(m);
    CHECK(reason == "users/alice/password: expected a string password");
    auto problem = validate_memcached_passwords({{"users/alice", value}});
    REQUIRE(problem);
    CHECK(problem->key == "users/alice/password");
  }
  // Fixed by the next change.
  CHECK(m.handle_event(change("users/alice", user("pw"))));
  CHECK(content_of(m) == "alice:pw\n");
  CHECK(m.format_status().count("refused") == 0);
}

TEST_CASE("passwords: the first problem is reported, in user order") {
  snapshot s{{"users/bob", user("b b")}, {"users/a:x", user("pw")}};
  auto problem = validate_memcached_passwords(s);
  REQUIRE(problem);
  CHECK(problem->key == "users/a:x");
  CHECK_FALSE(validate_memcached_passwords({}).has_value());
  CHECK_FALSE(validate_memcached_passwords(
                {{"users/alice", user("pw")}, {"other", config_value{}}})
                .has_value());
}

TEST_CASE("passwords: format_status names users, never passwords") {
  memcached_passwords m;
  m.init({{"users/bob", user("SECRET-b")}, {"users/alice", user("SECRET-a")}});
  auto status = m.format_status();
  CHECK(status["users"] == "2");
  CHECK(status["names"] == "alice,bob");
  CHECK(status.count("refused") == 0);
  for (auto& kvp : status) {
    CHECK_FALSE(contains(kvp.first, "SECRET"));
    CHECK_FALSE(contains(kvp.second, "SECRET"));
  }
  memcached_passwords empty;
  empty.init({});
  CHECK(empty.format_status()["users"] == "0");
  CHECK(empty.format_status()["names"].empty());
}

TEST_CASE("passwords: the factory makes a passwords module") {
  auto m = make_memcached_passwords();
  REQUIRE(m != nullptr);
  m->init({{"users/alice", user("pw")}});
  CHECK(m->produce().text() == "alice:pw\n");
}

// -- memcached_permissions ----------------------------------------------------

TEST_CASE("permissions: the documented JSON, exactly") {
  memcached_permissions m;
  m.init({{"users/alice", user("SECRET-a", {"admin", "reader"})}});
  CHECK(content_of(m)
        == "{\"version\":1,\"users\":{\"alice\":{\"roles\":[\"admin\","
           "\"reader\"]}}}\n");
}

TEST_CASE("permissions: users sorted, roles sorted and unique, no password") {
  memcached_permissions m;
  m.init({{"users/carol", user("SECRET-c", {"writer", "admin", "writer"})},
          {"users/alice", user("SECRET-a", {"reader"})},
          {"users/bob", user("SECRET-b")},
          {"groups/x", config_value{std::string{"y"}}}});
  auto text = content_of(m);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK_FALSE(contains(text, "SECRET"));
  CHECK_FALSE(contains(text, "password"));
  CHECK_FALSE(contains(text, "groups"));
  CHECK(text.find("\"alice\"") < text.find("\"bob\""));
  CHECK(text.find("\"bob\"") < text.find("\"carol\""));
  auto doc = nlohmann::json::parse(text);
  CHECK(doc["version"] == 1);
  REQUIRE(doc["users"].is_object());
  CHECK(doc["users"].size() == 3);
  CHECK(doc["users"]["alice"]["roles"] == nlohmann::json{"reader"});
  CHECK(doc["users"]["bob"]["roles"] == nlohmann::json::array());
  CHECK(doc["users"]["carol"]["roles"] == nlohmann::json{"admin", "writer"});
  CHECK(doc["users"]["carol"].size() == 1);
  CHECK(doc.size() == 2);
}

TEST_CASE("permissions: no users is an empty users object") {
  memcached_permissions m;
  m.init({});
  CHECK(content_of(m) == "{\"version\":1,\"users\":{}}\n");
}

TEST_CASE("permissions: names JSON must escape are escaped") {
  memcached_permissions m;
  m.init({{"users/a\"b\\c", user("pw", {"r\"1"})}});
  auto doc = nlohmann::json::parse(content_of(m));
  CHECK(doc["users"]["a\"b\\c"]["roles"] == nlohmann::json{"r\"1"});
}

TEST_CASE("permissions: filter and handle_event") {
  memcached_permissions m;
  CHECK(m.filter_event("users/alice"));
  CHECK_FALSE(m.filter_event("users"));
  CHECK_FALSE(m.filter_event("passwords/alice"));
  m.init({{"users/alice", user("pw1", {"admin", "reader"})}});
  auto before = content_of(m);
  CHECK_FALSE(
    m.handle_event(change("users/alice", user("pw1", {"admin", "reader"}))));
  // Only the password changed: nothing for this file.
  CHECK_FALSE(
    m.handle_event(change("users/alice", user("pw2", {"admin", "reader"}))));
  // Reordered or repeated roles are the same set.
  CHECK_FALSE(m.handle_event(
    change("users/alice", user("pw2", {"reader", "admin", "admin"}))));
  CHECK(content_of(m) == before);
  CHECK(m.handle_event(change("users/alice", user("pw2", {"reader"}))));
  CHECK(nlohmann::json::parse(content_of(m))["users"]["alice"]["roles"]
        == nlohmann::json{"reader"});
  CHECK(m.handle_event(change("users/bob", user("pw"))));
  CHECK(m.handle_event(removal("users/alice")));
  CHECK_FALSE(m.handle_event(removal("users/alice")));
  CHECK_FALSE(m.handle_event(change("other/alice", user("pw", {"x"}))));
  auto doc = nlohmann::json::parse(content_of(m));
  CHECK(doc["users"].size() == 1);
  CHECK(doc["users"].contains("bob"));
}

TEST_CASE("permissions: malformed roles are refused, naming the key") {
  config_value::dictionary bad_roles;
  bad_roles.emplace("password", config_value{std::string{"SECRET"}});
  bad_roles.emplace("roles", config_value{std::string{"admin"}});
  config_value::dictionary bad_role;
  bad_role.emplace("password", config_value{std::string{"SECRET"}});
  bad_role.emplace("roles",
                   config_value{config_value::list{config_value{int64_t{7}}}});
  for (auto value : {config_value{bad_roles}, config_value{bad_role},
                     config_value{std::string{"SECRET"}}}) {
    memcached_permissions m;
    m.init({{"users/alice", value}});
    auto reason = refusal_of(m);
    CHECK(reason == "users/alice/roles: expected a list of role names");
    CHECK_FALSE(contains(reason, "SECRET"));
    CHECK(m.format_status()["refused"] == reason);
    auto problem = validate_memcached_permissions({{"users/alice", value}});
    REQUIRE(problem);
    CHECK(problem->key == "users/alice/roles");
  }
  memcached_permissions m;
  m.init({{"users/alice", user("pw", {""})}});
  CHECK(refusal_of(m) == "users/alice/roles: empty role name");
}

TEST_CASE("permissions: a name that is not UTF-8 is refused") {
  memcached_permissions m;
  m.init({{"users/al\xff", user("SECRET")}});
  auto reason = refusal_of(m);
  CHECK(contains(reason, "UTF-8"));
  CHECK_FALSE(contains(reason, "SECRET"));
  CHECK(validate_memcached_permissions({{"users/al\xff", user("SECRET")}})
          .has_value());
  CHECK_FALSE(
    validate_memcached_permissions({{"users/alice", user("pw")}}).has_value());
}

TEST_CASE("permissions: format_status has names and roles count, no password") {
  memcached_permissions m;
  m.init({{"users/bob", user("SECRET-b", {"x"})},
          {"users/alice", user("SECRET-a")}});
  auto status = m.format_status();
  CHECK(status["users"] == "2");
  CHECK(status["names"] == "alice,bob");
  for (auto& kvp : status)
    CHECK_FALSE(contains(kvp.second, "SECRET"));
  auto f = make_memcached_permissions();
  f->init({});
  CHECK(f->produce().what() == rendering::kind::content);
}

// -- the module table ---------------------------------------------------------

TEST_CASE("module table: every entry is complete and found by its name") {
  REQUIRE(module_table().size() == 2);
  for (auto& entry : module_table()) {
    CAPTURE(entry.name);
    CHECK_FALSE(entry.name.empty());
    CHECK(static_cast<bool>(entry.make));
    CHECK(static_cast<bool>(entry.validate));
    CHECK(find_module(entry.name) == &entry);
    CHECK((entry.forbidden_mode == 0) == entry.forbidden_mode_reason.empty());
  }
  CHECK(find_module("nosuch") == nullptr);
}

TEST_CASE("module table: the preview masks every password and nothing else") {
  snapshot source{{"users/alice", user("s3cret", {"admin"})},
                  {"users/bob", user("hunter2")}};
  auto passwords = preview(*find_module("memcached_passwords"), source);
  CHECK(passwords == "alice:********\nbob:********\n");
  CHECK(passwords.find("s3cret") == std::string::npos);
  auto permissions = preview(*find_module("memcached_permissions"), source);
  CHECK(permissions.find("alice") != std::string::npos);
  CHECK(permissions.find("admin") != std::string::npos);
  CHECK(permissions.find("s3cret") == std::string::npos);
}

TEST_CASE("module table: a preview of a refused source says why, no content") {
  snapshot source{{"users/a:b", user("pw")}};
  auto out = preview(*find_module("memcached_passwords"), source);
  CHECK(out.rfind("(refused: ", 0) == 0);
  CHECK(out.find("pw") == std::string::npos);
}
