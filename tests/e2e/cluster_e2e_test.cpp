// Several mcfgd nodes following one real three-member etcd cluster
// (ARCHITECTURE.md §6), each with its own real memcached reading the auth
// file its node writes. Time here is real; every wait is bounded.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "node_harness.hpp"
#include "support/etcd_cluster.hpp"
#include "support/memcached_client.hpp"
#include "support/memcached_server.hpp"
#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string prefix = "/mcfg/";

std::string user_json(const std::string& pw) {
  return R"({"password": ")" + pw + R"(", "roles": ["reader"]})";
}

/// One node: its own folder, node.yaml, mcfgd and memcached.
struct cluster_node {
  temp_dir dir;
  std::string name;
  std::string node_yaml = dir / "node.yaml";
  std::string auth = dir / "run/memcached.auth";
  std::string err = dir / "mcfgd.err";
  std::unique_ptr<child_process> mcfgd;
  std::unique_ptr<memcached_server> memcached;
  /// Where its memcached will listen: named in node.yaml's `verify`
  /// before memcached starts.
  uint16_t memcached_port = free_loopback_port();

  /// `etcd_extra`: more lines under `source.etcd` (indented 4). With
  /// `verify`, the auth file's refresh proves memcached enforces each
  /// version (node.yaml `verify`), so a sync waits for that.
  cluster_node(std::string node_name, const etcd_cluster& cluster,
               const std::string& etcd_extra = "", bool verify = true)
    : name(std::move(node_name)) {
    std::string endpoints;
    for (auto& url : cluster.endpoints())
      endpoints += (endpoints.empty() ? "" : ", ") + ("\"" + url + "\"");
    write_text(node_yaml,
               "name: " + name
                 + "\n"
                   "source:\n"
                   "  etcd:\n"
                   "    endpoints: ["
                 + endpoints
                 + "]\n"
                   "    prefix: "
                 + prefix + "\n" + etcd_extra
                 + "retry: {interval: 100ms, deadline: 30s}\n"
                   "files:\n"
                   "  - module: memcached_passwords\n"
                   "    path: run/memcached.auth\n"
                   "    refresh: {signal: HUP, pidfile: run/memcached.pid"
                 + (verify ? ", verify: {memcached: \"127.0.0.1:"
                               + std::to_string(memcached_port) + "\"}"
                           : std::string{})
                 + "}\n");
  }

  ~cluster_node() {
    if (mcfgd) {
      mcfgd->signal(SIGKILL);
      mcfgd->wait_exit(5s);
    }
  }

  /// Starts mcfgd; with `with_memcached`, a memcached on its auth file
  /// once the file is there.
  void start(bool with_memcached = true) {
    mcfgd = std::make_unique<child_process>(
      std::vector<std::string>{MCFGD, "--config", node_yaml}, dir / "mcfgd.out",
      err, /*append=*/true);
    REQUIRE_MESSAGE(eventually([&] { return fs::exists(auth); }, 15s),
                    read_file(err));
    if (with_memcached && !memcached) {
      memcached_options opts;
      opts.auth_file = auth;
      opts.pidfile = dir / "run/memcached.pid";
      opts.port = memcached_port;
      memcached = std::make_unique<memcached_server>(opts);
    }
  }

  bool login(const std::string& user, const std::string& pw) {
    return try_login(memcached->port(), user, pw).accepted();
  }

  bool refused(const std::string& user, const std::string& pw) {
    return try_login(memcached->port(), user, pw).refused();
  }

  std::string log() const {
    return read_file(err);
  }

  /// mcfgctl against this node's control socket (its node.yaml).
  run_result ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {MCFGCTL, "--config", node_yaml});
    return run(dir, std::move(args), 30s);
  }
};

/// Three nodes on one cluster, started.
struct three_nodes {
  etcd_cluster cluster;
  std::vector<std::unique_ptr<cluster_node>> nodes;

  explicit three_nodes(const std::map<std::string, std::string>& users) {
    for (auto& [user, pw] : users)
      cluster.etcdctl_ok({"put", prefix + "users/" + user, user_json(pw)});
    for (int i = 1; i <= 3; ++i) {
      nodes.push_back(
        std::make_unique<cluster_node>("node" + std::to_string(i), cluster));
      nodes.back()->start();
    }
  }

  /// mcfgctl with node1's node.yaml (its etcd settings).
  run_result ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {MCFGCTL, "--config", nodes[0]->node_yaml});
    return run(nodes[0]->dir, std::move(args));
  }

  /// Whether every node's auth file reads `text` within `timeout`.
  bool all_files_are(const std::string& text,
                     std::chrono::milliseconds timeout = 15s) {
    for (auto& n : nodes)
      if (!eventually([&] { return read_file(n->auth) == text; }, timeout))
        return false;
    return true;
  }
};

} // namespace

TEST_CASE("cluster: a change written with plain etcdctl reaches every node's "
          "memcached, and the old password is refused") {
  REQUIRE(etcd_installed());
  three_nodes c{{{"alice", "Pw-alice-1"}, {"bob", "Pw-bob-1"}}};
  CHECK(c.all_files_are("alice:Pw-alice-1\nbob:Pw-bob-1\n"));
  c.cluster.etcdctl_ok({"put", prefix + "users/bob", user_json("Pw-bob-2")});
  REQUIRE(c.all_files_are("alice:Pw-alice-1\nbob:Pw-bob-2\n"));
  for (auto& n : c.nodes) {
    // memcached applies a SIGHUP at its next clock tick (once a second).
    CHECK(eventually([&] { return n->login("bob", "Pw-bob-2"); }, 5s));
    CHECK(n->refused("bob", "Pw-bob-1"));
    CHECK(n->login("alice", "Pw-alice-1"));
    CHECK(n->log().find("Pw-bob") == std::string::npos);
  }
}

TEST_CASE("cluster: mcfgctl import, then sync --cluster: every node's "
          "memcached takes the new passwords and refuses the old") {
  three_nodes c{{{"alice", "Pw-alice-1"}, {"bob", "Pw-bob-1"}}};
  write_text(c.nodes[0]->dir / "new.yaml",
             "users:\n"
             "  alice: {password: Pw-alice-2, roles: [admin]}\n"
             "  carol: {password: Pw-carol-1}\n");
  auto imported = c.ctl({"import", c.nodes[0]->dir / "new.yaml"});
  REQUIRE_MESSAGE(imported.exit_code == 0, imported.err);
  auto revision = std::stoll(imported.out);
  auto synced = c.ctl({"--timeout", "20s", "sync", "--cluster", "--revision",
                       std::to_string(revision)});
  REQUIRE_MESSAGE(synced.exit_code == 0, synced.err);
  CHECK(synced.out
        == "3 nodes hold revision " + std::to_string(revision)
             + ": 3 confirmed in their consumer, 0 written but not "
               "verifiable (no credential changed), 0 without a consumer "
               "check\n");
  for (auto& n : c.nodes) {
    // Synced means confirmed: each memcached enforces the revision at once,
    // with no wait for its reload tick.
    CHECK(read_file(n->auth) == "alice:Pw-alice-2\ncarol:Pw-carol-1\n");
    CHECK(n->login("alice", "Pw-alice-2"));
    CHECK(n->refused("alice", "Pw-alice-1"));
    CHECK(n->refused("bob", "Pw-bob-1"));
    CHECK(n->login("carol", "Pw-carol-1"));
  }
  auto status = c.ctl({"cluster", "status"});
  CHECK(status.exit_code == 0);
  for (auto& n : c.nodes)
    CHECK(status.out.find(n->name + "  applied " + std::to_string(revision)
                          + "  confirmed " + std::to_string(revision))
          != std::string::npos);
  auto exported = c.ctl({"export"});
  CHECK(exported.exit_code == 0);
  CHECK(exported.out.find("carol: {password: \"********\", roles: []}")
        != std::string::npos);
  CHECK(exported.out.find("Pw-") == std::string::npos);

  // An invalid file changes nothing.
  write_text(c.nodes[0]->dir / "bad.yaml", "users:\n  alice: {pasword: x}\n");
  auto bad = c.ctl({"import", c.nodes[0]->dir / "bad.yaml"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("bad.yaml:2:") != std::string::npos);
  CHECK(c.ctl({"--timeout", "10s", "sync", "--cluster"}).exit_code == 0);
  for (auto& n : c.nodes)
    CHECK(read_file(n->auth) == "alice:Pw-alice-2\ncarol:Pw-carol-1\n");
}

TEST_CASE("cluster: sync --cluster with one node stopped names it and exits "
          "1 after its timeout") {
  three_nodes c{{{"alice", "Pw-alice-1"}}};
  REQUIRE(c.ctl({"--timeout", "20s", "sync", "--cluster"}).exit_code == 0);
  // Stopped, not gone: its registration stays until its lease runs out.
  c.nodes[1]->mcfgd->signal(SIGSTOP);
  c.cluster.etcdctl_ok({"put", prefix + "users/bob", user_json("Pw-bob-1")});
  auto t0 = std::chrono::steady_clock::now();
  auto r = c.ctl({"--timeout", "2s", "sync", "--cluster"});
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.exit_code == 1);
  CHECK(took >= 2s);
  CHECK(r.err.find("node node2 did not reach revision") != std::string::npos);
  CHECK(r.err.find("node node1") == std::string::npos);
  CHECK(r.err.find("node node3") == std::string::npos);
  c.nodes[1]->mcfgd->signal(SIGCONT);
  CHECK(c.ctl({"--timeout", "20s", "sync", "--cluster"}).exit_code == 0);
}

TEST_CASE("cluster: an invalid revision is refused on every node with its "
          "key and revision, the files kept, and the next valid put applies") {
  three_nodes c{{{"alice", "Pw-alice-1"}}};
  REQUIRE(c.all_files_are("alice:Pw-alice-1\n"));
  auto before = c.cluster.etcdctl_ok(
    {"put", prefix + "users/bob", "{\"password\": \"Pw-bob-1\","});
  static_cast<void>(before);
  for (auto& n : c.nodes)
    CHECK(eventually([&] {
      return n->log().find("etcd " + prefix + "users/bob at revision")
             != std::string::npos;
    }));
  for (auto& n : c.nodes) {
    auto log = n->log();
    CHECK(log.find("refused, keeping the last good version")
          != std::string::npos);
    CHECK(log.find("not valid JSON") != std::string::npos);
    CHECK(log.find("Pw-bob-1") == std::string::npos);
    CHECK(read_file(n->auth) == "alice:Pw-alice-1\n");
  }
  // A name memcached would misread: the module's own rule, as for a file.
  c.cluster.etcdctl_ok({"put", prefix + "users/bob", user_json("Pw-bob-1")});
  c.cluster.etcdctl_ok({"put", prefix + "users/eve:x", user_json("Pw-eve")});
  for (auto& n : c.nodes)
    CHECK(eventually(
      [&] { return n->log().find("users/eve:x") != std::string::npos; }));
  CHECK(c.all_files_are("alice:Pw-alice-1\nbob:Pw-bob-1\n"));
  c.cluster.etcdctl_ok({"del", prefix + "users/eve:x"});
  CHECK(c.all_files_are("alice:Pw-alice-1\nbob:Pw-bob-1\n"));
  for (auto& n : c.nodes)
    CHECK(eventually([&] { return n->login("bob", "Pw-bob-1"); }, 5s));
}

TEST_CASE("cluster: one member killed, changes still reach every node, two "
          "killed, every node keeps its files and says so, one back, they "
          "converge") {
  three_nodes c{{{"alice", "Pw-alice-1"}}};
  REQUIRE(c.all_files_are("alice:Pw-alice-1\n"));
  c.cluster.kill_member(0);
  // The two left elect a leader (member 0 may have been it) before the put.
  REQUIRE(c.cluster.wait_for_quorum());
  c.cluster.etcdctl_ok({"put", prefix + "users/bob", user_json("Pw-bob-1")});
  REQUIRE(c.all_files_are("alice:Pw-alice-1\nbob:Pw-bob-1\n"));

  c.cluster.kill_member(1);
  for (auto& n : c.nodes)
    CHECK(eventually(
      [&] { return n->log().find("source unreachable") != std::string::npos; },
      20s));
  for (auto& n : c.nodes) {
    CHECK(read_file(n->auth) == "alice:Pw-alice-1\nbob:Pw-bob-1\n");
    CHECK(n->login("bob", "Pw-bob-1"));
    CHECK(n->mcfgd->wait_exit(0ms) == std::nullopt);
    auto status = n->ctl({"status"});
    CHECK(status.exit_code == 0);
    CHECK(status.out.find("source unreachable since 20") != std::string::npos);
    auto as_json = n->ctl({"status", "--json"});
    CHECK(as_json.out.find(R"("backend": "etcd")") != std::string::npos);
    auto health = n->ctl({"health"});
    CHECK(health.exit_code == 1);
    CHECK(health.out.find("source unreachable since") != std::string::npos);
  }
  c.cluster.restart_member(1);
  REQUIRE(c.cluster.wait_for_quorum());
  c.cluster.etcdctl_ok(
    {"put", prefix + "users/carol", user_json("Pw-carol-1")});
  CHECK(
    c.all_files_are("alice:Pw-alice-1\nbob:Pw-bob-1\ncarol:Pw-carol-1\n", 20s));
  for (auto& n : c.nodes)
    CHECK(eventually([&] {
      return n->log().find("source reachable again") != std::string::npos;
    }));
}

TEST_CASE("cluster: a node SIGKILLed while changes are made and the history "
          "compacted converges when restarted") {
  three_nodes c{{{"alice", "Pw-alice-1"}}};
  REQUIRE(c.all_files_are("alice:Pw-alice-1\n"));
  auto& down = *c.nodes[2];
  down.mcfgd->signal(SIGKILL);
  REQUIRE(down.mcfgd->wait_exit(5s));
  c.cluster.etcdctl_ok({"put", prefix + "users/bob", user_json("Pw-bob-1")});
  c.cluster.etcdctl_ok({"del", prefix + "users/alice"});
  auto status = c.cluster.etcdctl_ok(
    {"put", prefix + "users/carol", user_json("Pw-carol-1"), "-w", "json"});
  auto rev_at = status.find("\"revision\":");
  REQUIRE(rev_at != std::string::npos);
  auto revision = std::stoll(status.substr(rev_at + 11));
  c.cluster.etcdctl_ok({"compaction", std::to_string(revision)});
  CHECK(read_file(down.auth) == "alice:Pw-alice-1\n");
  down.start();
  CHECK(c.all_files_are("bob:Pw-bob-1\ncarol:Pw-carol-1\n"));
  CHECK(eventually([&] { return down.login("carol", "Pw-carol-1"); }, 5s));
  CHECK(down.refused("alice", "Pw-alice-1"));
  // Registered again, with the revision it now holds (or a later one).
  CHECK(eventually([&] {
    auto text = c.cluster.etcdctl_ok(
      {"get", prefix + "nodes/node3", "--print-value-only"});
    auto at = text.find("\"revision\":");
    return at != std::string::npos
           && std::stoll(text.substr(at + 11)) >= revision;
  }));
}

namespace {

/// A CA, a server certificate it signed for 127.0.0.1 and a client
/// certificate, made with Debian's openssl. The client certificate has no
/// common name: with auth on, etcd refuses gateway requests whose client
/// certificate names one (it would be taken for a user).
struct test_pki {
  temp_dir dir;
  std::string ca = dir / "ca.pem";
  std::string server_cert = dir / "server.pem";
  std::string server_key = dir / "server-key.pem";
  std::string cert = dir / "node.pem";
  std::string key = dir / "node-key.pem";
  std::string other_ca = dir / "other-ca.pem";

  test_pki() {
    auto ssl = [&](std::vector<std::string> args) {
      args.insert(args.begin(), "openssl");
      auto r = run(dir, std::move(args), 30s);
      REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    };
    write_text(dir / "ext.cnf", "subjectAltName=IP:127.0.0.1\n"
                                "extendedKeyUsage=serverAuth,clientAuth\n");
    for (auto& [crt, k] : {std::pair{ca, dir / "ca-key.pem"},
                           std::pair{other_ca, dir / "other-ca-key.pem"}})
      ssl({"req", "-x509", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
           "/CN=mcfg test CA", "-keyout", k, "-out", crt});
    for (auto& [crt, k, subject] :
         {std::tuple{server_cert, server_key, "/CN=127.0.0.1"},
          std::tuple{cert, key, "/O=mcfg node"}}) {
      ssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
           "-nodes", "-subj", subject, "-keyout", k, "-out", crt + ".csr"});
      ssl({"x509", "-req", "-in", crt + ".csr", "-CA", ca, "-CAkey",
           dir / "ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile",
           dir / "ext.cnf", "-out", crt});
    }
  }
};

} // namespace

TEST_CASE("cluster: auth and TLS, the right credentials work, wrong ones "
          "make mcfgd refuse to start with exit 2 and a clear message") {
  test_pki pki;
  etcd_cluster_options opts;
  opts.tls = etcd_tls{pki.ca, pki.server_cert, pki.server_key,
                      true,   pki.cert,        pki.key};
  etcd_cluster cluster{opts};
  cluster.etcdctl_ok({"user", "add", "root", "--new-user-password=Root-pw"});
  cluster.etcdctl_ok({"role", "add", "mcfgd"});
  cluster.etcdctl_ok({"role", "grant-permission", "mcfgd", "--prefix=true",
                      "readwrite", prefix});
  cluster.etcdctl_ok({"user", "add", "mcfgd", "--new-user-password=Etcd-pw-1"});
  cluster.etcdctl_ok({"user", "grant-role", "mcfgd", "mcfgd"});
  cluster.etcdctl_ok({"auth", "enable"});
  cluster.set_etcdctl_user("root:Root-pw");
  cluster.etcdctl_ok({"put", prefix + "users/alice", user_json("Pw-alice-1")});

  auto tls = "    tls: {ca: " + pki.ca + ", cert: " + pki.cert
             + ", key: " + pki.key + "}\n";
  std::string creds = "    username: mcfgd\n    password_file: etcd.pw\n";
  auto password = [](cluster_node& n, const std::string& pw, mode_t mode) {
    write_text(n.dir / "etcd.pw", pw + "\n");
    ::chmod((n.dir / "etcd.pw").c_str(), mode);
  };

  cluster_node good{"good", cluster, creds + tls};
  password(good, "Etcd-pw-1", 0600);
  good.start(false);
  CHECK(
    eventually([&] { return read_file(good.auth) == "alice:Pw-alice-1\n"; }));
  cluster.etcdctl_ok({"put", prefix + "users/bob", user_json("Pw-bob-1")});
  CHECK(eventually([&] {
    return read_file(good.auth) == "alice:Pw-alice-1\nbob:Pw-bob-1\n";
  }));

  auto refuses = [&](cluster_node& n, const std::string& needle) {
    n.mcfgd = std::make_unique<child_process>(
      std::vector<std::string>{MCFGD, "--config", n.node_yaml},
      n.dir / "mcfgd.out", n.err);
    auto code = n.mcfgd->wait_exit_code(30s);
    CHECK(code == 2);
    auto text = n.log();
    INFO(text);
    CHECK(text.find(needle) != std::string::npos);
    CHECK(text.find("Etcd-pw") == std::string::npos);
    CHECK(text.find("Wrong-pw") == std::string::npos);
    CHECK_FALSE(fs::exists(n.auth));
  };
  cluster_node wrong_pw{"wrong-pw", cluster, creds + tls};
  password(wrong_pw, "Wrong-pw", 0600);
  refuses(wrong_pw, "authentication failed");

  cluster_node loose{"loose", cluster, creds + tls};
  password(loose, "Etcd-pw-1", 0644);
  refuses(loose, "make it mode 0600");

  cluster_node wrong_ca{"wrong-ca", cluster,
                        creds + "    tls: {ca: " + pki.other_ca + ", cert: "
                          + pki.cert + ", key: " + pki.key + "}\n"};
  password(wrong_ca, "Etcd-pw-1", 0600);
  refuses(wrong_ca, "SSL certificate problem");

  cluster_node no_cert{"no-cert", cluster,
                       creds + "    tls: {ca: " + pki.ca + "}\n"};
  password(no_cert, "Etcd-pw-1", 0600);
  refuses(no_cert, "no etcd endpoint answered");
}

TEST_CASE("cluster: mcfgctl sync right after an etcdctl put returns with "
          "the put in the node's file, 10 times") {
  etcd_cluster cluster;
  cluster.etcdctl_ok({"put", prefix + "users/alice", user_json("Pw-alice-0")});
  cluster_node n{"node1", cluster};
  n.start();
  for (int i = 1; i <= 10; ++i) {
    auto pw = "Pw-alice-" + std::to_string(i);
    cluster.etcdctl_ok({"put", prefix + "users/alice", user_json(pw)});
    auto synced = n.ctl({"sync"});
    REQUIRE_MESSAGE(synced.exit_code == 0, synced.err);
    // Read once, at once: sync's answer is the proof, not a later poll;
    // and memcached already enforces it (node.yaml `verify`).
    CHECK(read_file(n.auth) == "alice:" + pw + "\n");
    CHECK(n.login("alice", pw));
    CHECK(n.refused("alice", "Pw-alice-" + std::to_string(i - 1)));
  }
  CHECK(n.log().find("Pw-alice") == std::string::npos);
}

TEST_CASE("cluster: mcfgctl sync with every etcd member down exits 1 "
          "naming etcd within the node's etcd bounds") {
  etcd_cluster cluster;
  cluster.etcdctl_ok({"put", prefix + "users/alice", user_json("Pw-alice-1")});
  cluster_node n{"node1", cluster};
  n.start();
  REQUIRE(n.ctl({"sync"}).exit_code == 0);
  for (size_t i = 0; i < cluster.size(); ++i)
    cluster.kill_member(i);
  auto t0 = std::chrono::steady_clock::now();
  auto r = n.ctl({"sync"});
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("could not read etcd's current revision")
        != std::string::npos);
  CHECK(r.err.find("Pw-") == std::string::npos);
  // The client's retry_for (5s) and one request_timeout (3s), then margin.
  CHECK(took < 10s);
  CHECK(read_file(n.auth) == "alice:Pw-alice-1\n");
}
