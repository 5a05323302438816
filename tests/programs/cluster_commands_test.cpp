// mcfgctl's cluster commands against a real three-member etcd cluster:
// import (one transaction, the file backend's rules), export (masked),
// cluster status and sync --cluster over nodes' registrations.
#include <doctest/doctest.h>

#include <optional>

#include <sstream>

#include <nlohmann/json.hpp>

#include "memcached_cfg/programs/cluster_commands.hpp"
#include "memcached_cfg/source/etcd_follower.hpp"
#include "support/etcd_cluster.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;
using namespace std::chrono_literals;
using mcfg::test::etcd_cluster;

namespace {

struct fixture {
  etcd_cluster cluster;
  test::temp_dir dir;
  cluster_target target;
  std::ostringstream out;
  std::ostringstream err;

  fixture() {
    target.client.endpoints = cluster.endpoints();
    target.prefix = "/cc/";
  }

  etcd::client client() {
    return etcd::client{target.client};
  }

  /// Imports `yaml` (written to a file); the exit code.
  int import(const std::string& yaml) {
    auto path = dir / "cluster.yaml";
    test::write_text(path, yaml);
    out.str("");
    err.str("");
    return cluster_import(target, path, out, err);
  }

  /// A node's registration as a node writes it.
  /// `confirmed`: the node's confirmed_revision (a node with `verify`).
  void register_node(const std::string& name, int64_t revision,
                     const std::string& digest, bool synced = true,
                     std::optional<int64_t> confirmed = std::nullopt) {
    nlohmann::json j{{"name", name},
                     {"revision", revision},
                     {"digest", digest},
                     {"healthy", true},
                     {"synced", synced}};
    if (confirmed)
      j["confirmed_revision"] = *confirmed;
    client().put("/cc/nodes/" + name, j.dump());
  }
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("import: the file's users replace users/ in one transaction") {
  fixture f;
  auto c = f.client();
  c.put("/cc/users/gone", R"({"password":"x","roles":[]})");
  c.put("/cc/users/bob", R"({"password":"Pw-bob-1","roles":["reader"]})");
  c.put("/cc/nodes/n1", "{}");
  REQUIRE(f.import("users:\n"
                   "  alice: {password: Pw-alice-1, roles: [admin]}\n"
                   "  bob: {password: Pw-bob-1, roles: [reader]}\n")
          == 0);
  auto revision = std::stoll(f.out.str());
  auto users = c.range_prefix("/cc/users/");
  REQUIRE(users.kvs.size() == 2);
  CHECK(users.kvs[0].key == "/cc/users/alice");
  CHECK(
    nlohmann::json::parse(users.kvs[0].value)
    == nlohmann::json::parse(R"({"password":"Pw-alice-1","roles":["admin"]})"));
  CHECK(users.kvs[0].mod_revision == revision);
  // bob was already so: not rewritten. gone was deleted at `revision`.
  CHECK(users.kvs[1].mod_revision < revision);
  CHECK(c.range_prefix("/cc/nodes/").kvs.size() == 1);
  CHECK(users.revision == revision);
  CHECK(f.err.str().empty());

  // The same file again: nothing to change, the same revision printed.
  REQUIRE(f.import("users:\n"
                   "  alice: {password: Pw-alice-1, roles: [admin]}\n"
                   "  bob: {password: Pw-bob-1, roles: [reader]}\n")
          == 0);
  CHECK(std::stoll(f.out.str()) == revision);
  CHECK(c.range_prefix("/cc/").revision == revision);
}

TEST_CASE("import: an invalid file changes nothing and says where") {
  fixture f;
  auto c = f.client();
  auto before = c.put("/cc/users/alice", R"({"password":"Pw-alice-1"})");
  CHECK(f.import("users:\n  alice: {password: [x]}\n") == 1);
  CHECK(contains(f.err.str(), "cluster.yaml:2:"));
  CHECK(contains(f.err.str(), "users/alice/password"));
  CHECK(contains(f.err.str(), "nothing imported"));
  // A module's rule, as a node would apply it.
  CHECK(f.import("users:\n  \"eve:x\": {password: Pw-eve}\n") == 1);
  CHECK(contains(f.err.str(), "users/eve:x"));
  CHECK(f.out.str().empty());
  CHECK(c.range_prefix("/cc/").revision == before);
  CHECK_FALSE(contains(f.err.str(), "Pw-"));
}

TEST_CASE("export: the source as YAML, passwords masked unless asked") {
  fixture f;
  REQUIRE(f.import("users:\n"
                   "  alice: {password: \"Pw-alice,[1]\", roles: [admin, x]}\n"
                   "  bob: {password: Pw-bob-1}\n")
          == 0);
  std::ostringstream out;
  std::ostringstream err;
  REQUIRE(cluster_export(f.target, false, out, err) == 0);
  CHECK_FALSE(contains(out.str(), "Pw"));
  CHECK(
    contains(out.str(), "alice: {password: \"********\", roles: [admin, x]}"));
  std::ostringstream secret;
  REQUIRE(cluster_export(f.target, true, secret, err) == 0);
  // What export shows imports back to the same users.
  auto rev = f.client().range_prefix("/cc/").revision;
  REQUIRE(f.import(secret.str()) == 0);
  CHECK(std::stoll(f.out.str()) == rev);
}

TEST_CASE("cluster status and sync --cluster over the nodes' registrations") {
  fixture f;
  REQUIRE(f.import("users:\n  alice: {password: Pw-alice-1}\n") == 0);
  auto c = f.client();
  auto v1 = etcd::read_users(c, "/cc/");
  f.register_node("n1", v1.revision, v1.digest);
  f.register_node("n2", v1.revision - 1, "other", false);
  std::ostringstream out;
  std::ostringstream err;
  REQUIRE(cluster_status(f.target, out, err) == 0);
  CHECK(contains(out.str(), "2 nodes registered"));
  CHECK(contains(out.str(), "n1  applied " + std::to_string(v1.revision)
                              + "  no consumer check  up to date  healthy\n"));
  CHECK(contains(out.str(), "n2  applied " + std::to_string(v1.revision - 1)
                              + "  no consumer check  behind  healthy  "
                                "(refresh or check pending)\n"));

  // n2 never arrives: named, exit 1, after the timeout.
  auto t0 = std::chrono::steady_clock::now();
  CHECK(cluster_sync(f.target, std::nullopt, 500ms, out, err) == 1);
  CHECK(std::chrono::steady_clock::now() - t0 >= 500ms);
  CHECK(contains(err.str(), "node n2 did not reach revision"));
  CHECK_FALSE(contains(err.str(), "node n1"));

  // A node's own key changes make new revisions but not new users: a node
  // whose digest matches holds the newest revision too.
  f.register_node("n2", v1.revision, v1.digest);
  std::ostringstream ok;
  CHECK(cluster_sync(f.target, std::nullopt, 2s, ok, err) == 0);
  CHECK(contains(ok.str(), " nodes hold revision "));
  CHECK(contains(ok.str(), ": 0 confirmed in their consumer, 0 written but "
                           "not verifiable (no credential changed), 2 "
                           "without a consumer check\n"));

  // A node arriving while sync waits.
  REQUIRE(f.import("users:\n  alice: {password: Pw-alice-2}\n") == 0);
  auto v2 = etcd::read_users(c, "/cc/");
  std::vector<awaited_nodes> rounds;
  auto arrive = [&](const awaited_nodes& missing) {
    rounds.push_back(missing);
    if (rounds.size() == 1) {
      f.register_node("n1", v2.revision, v2.digest);
      f.register_node("n2", v2.revision, v2.digest);
    }
  };
  std::ostringstream later;
  CHECK(cluster_sync(f.target, v2.revision, 10s, later, err, arrive) == 0);
  REQUIRE(rounds.size() == 1); // it waited once, then both had arrived
  CHECK(rounds[0].size() == 2);
  CHECK(rounds[0].at("n1") == "holds revision " + std::to_string(v1.revision));

  // A node that goes away while sync waits has not arrived.
  REQUIRE(f.import("users:\n  alice: {password: Pw-alice-3}\n") == 0);
  auto v3 = etcd::read_users(c, "/cc/");
  bool left = false;
  auto leave = [&](const awaited_nodes&) {
    if (!left) {
      f.register_node("n1", v3.revision, v3.digest);
      c.delete_prefix("/cc/nodes/n2");
      left = true;
    }
  };
  std::ostringstream gone_out;
  std::ostringstream gone_err;
  CHECK(cluster_sync(f.target, v3.revision, 1s, gone_out, gone_err, leave)
        == 1);
  CHECK(left);
  CHECK(contains(gone_err.str(), "node n2 did not reach revision "
                                   + std::to_string(v3.revision)
                                   + ": no longer registered"));
  CHECK_FALSE(contains(gone_err.str(), "node n1"));
}

TEST_CASE("import: a user deleted between the read and the transaction "
          "fails the import and nothing is written") {
  fixture f;
  auto c = f.client();
  c.put("/cc/users/alice", R"({"password":"Pw-alice-1","roles":[]})");
  c.put("/cc/users/bob", R"({"password":"Pw-bob-1","roles":[]})");
  int64_t deleted_at = 0;
  auto path = f.dir / "cluster.yaml";
  // bob is kept unchanged, alice changes: only alice would be written.
  test::write_text(path, "users:\n"
                         "  alice: {password: Pw-alice-2}\n"
                         "  bob: {password: Pw-bob-1}\n");
  auto code = cluster_import(f.target, path, f.out, f.err, [&] {
    deleted_at = c.delete_prefix("/cc/users/bob");
  });
  CHECK(code == 1);
  REQUIRE(deleted_at > 0);
  CHECK(contains(f.err.str(), "changed since they were read"));
  CHECK(contains(f.err.str(), "nothing imported, try again"));
  CHECK_FALSE(contains(f.err.str(), "Pw-"));
  CHECK(f.out.str().empty());
  // Nothing after the delete: alice is as before, bob stays deleted.
  auto users = c.range_prefix("/cc/users/");
  CHECK(users.revision == deleted_at);
  REQUIRE(users.kvs.size() == 1);
  CHECK(users.kvs[0].key == "/cc/users/alice");
  CHECK(contains(users.kvs[0].value, "Pw-alice-1"));
}

TEST_CASE("import: a user created between the read and the transaction "
          "fails the import and nothing is written") {
  fixture f;
  auto c = f.client();
  c.put("/cc/users/alice", R"({"password":"Pw-alice-1","roles":[]})");
  int64_t created_at = 0;
  auto path = f.dir / "cluster.yaml";
  test::write_text(path, "users:\n  alice: {password: Pw-alice-2}\n");
  auto code = cluster_import(f.target, path, f.out, f.err, [&] {
    created_at = c.put("/cc/users/carol", R"({"password":"Pw-carol"})");
  });
  CHECK(code == 1);
  CHECK(contains(f.err.str(), "changed since they were read"));
  CHECK(f.out.str().empty());
  auto users = c.range_prefix("/cc/users/");
  CHECK(users.revision == created_at);
  REQUIRE(users.kvs.size() == 2);
  CHECK(contains(users.kvs[0].value, "Pw-alice-1"));
  CHECK(users.kvs[1].key == "/cc/users/carol");
}

TEST_CASE("import: a change outside users/ between the read and the "
          "transaction does not fail the import") {
  fixture f;
  auto c = f.client();
  c.put("/cc/users/alice", R"({"password":"Pw-alice-1","roles":[]})");
  c.put("/cc/users/bob", R"({"password":"Pw-bob-1","roles":[]})");
  auto path = f.dir / "cluster.yaml";
  test::write_text(path, "users:\n"
                         "  alice: {password: Pw-alice-2}\n"
                         "  bob: {password: Pw-bob-1}\n");
  int hooks = 0;
  auto code = cluster_import(f.target, path, f.out, f.err, [&] {
    ++hooks;
    c.put("/cc/nodes/n1", "{}");
  });
  REQUIRE(code == 0);
  CHECK(hooks == 1);
  CHECK(f.err.str().empty());
  auto revision = std::stoll(f.out.str());
  auto users = c.range_prefix("/cc/users/");
  CHECK(users.revision == revision);
  REQUIRE(users.kvs.size() == 2);
  CHECK(contains(users.kvs[0].value, "Pw-alice-2"));
  CHECK(users.kvs[0].mod_revision == revision);
  CHECK(users.kvs[1].mod_revision < revision); // bob: not rewritten
}

TEST_CASE("import: a password that is not valid UTF-8 is refused and "
          "nothing is written") {
  fixture f;
  auto c = f.client();
  auto before = c.put("/cc/users/alice", R"({"password":"Pw-alice-1"})");
  CHECK(f.import("users:\n  alice: {password: \"Pw-\xe9t\xe9\"}\n") == 1);
  CHECK(contains(f.err.str(), "users/alice: its password or a role is not "
                              "valid UTF-8"));
  CHECK(contains(f.err.str(), "nothing imported"));
  CHECK_FALSE(contains(f.err.str(), "Pw-"));
  CHECK(c.range_prefix("/cc/").revision == before);
}

TEST_CASE("sync --cluster waits for a checked node's consumer and says how "
          "many nodes were confirmed") {
  fixture f;
  REQUIRE(f.import("users:\n  alice: {password: Pw-alice-1}\n") == 0);
  auto c = f.client();
  auto v = etcd::read_users(c, "/cc/");
  // n1 confirmed; n2's files hold it but its check is not through.
  f.register_node("n1", v.revision, v.digest, true, v.revision);
  f.register_node("n2", v.revision, v.digest, false, v.revision - 1);
  std::ostringstream out;
  std::ostringstream err;
  CHECK(cluster_sync(f.target, std::nullopt, 300ms, out, err) == 1);
  CHECK(contains(err.str(), "node n2 did not reach revision "));
  CHECK(contains(err.str(), ": refresh or consumer check not through"));
  CHECK_FALSE(contains(err.str(), "node n1"));
  std::ostringstream status;
  REQUIRE(cluster_status(f.target, status, err) == 0);
  CHECK(contains(status.str(), "n1  applied " + std::to_string(v.revision)
                                 + "  confirmed " + std::to_string(v.revision)
                                 + "  up to date"));
  // n2's check through, but the revision changed no credential it checks.
  f.register_node("n2", v.revision, v.digest, true, v.revision - 1);
  std::ostringstream ok;
  CHECK(cluster_sync(f.target, std::nullopt, 2s, ok, err) == 0);
  CHECK(contains(ok.str(), "2 nodes hold revision "));
  CHECK(contains(ok.str(), ": 1 confirmed in their consumer, 1 written but "
                           "not verifiable (no credential changed), 0 "
                           "without a consumer check\n"));
}
