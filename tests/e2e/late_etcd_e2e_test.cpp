// A node whose etcd is not up when it starts (docs/install.md, "Boot
// order"): it does not exit, writes nothing, says why in status and
// /healthz, and starts following once etcd answers; only configuration that
// can never work exits 2. Real mcfgd, real etcd (one member, so that it can
// be down and come back on its own); every wait is bounded.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "node_harness.hpp"
#include "support/etcd_cluster.hpp"
#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string prefix = "/late/";
const std::string password = "Pw-late-1";

etcd_cluster_options one_member() {
  etcd_cluster_options opts;
  opts.members = 1;
  return opts;
}

/// One etcd member holding user alice, and a node on it.
struct late_node {
  etcd_cluster cluster{one_member()};
  temp_dir dir;
  std::string node_yaml = dir / "node.yaml";
  std::string auth = dir / "run/memcached.auth";
  std::string err = dir / "mcfgd.err";
  std::unique_ptr<child_process> mcfgd;

  explicit late_node(const std::string& etcd_extra = "") {
    cluster.etcdctl_ok(
      {"put", prefix + "users/alice",
       R"({"password": ")" + password + R"(", "roles": ["reader"]})"});
    write_text(node_yaml, "name: n1\n"
                          "source:\n"
                          "  etcd:\n"
                          "    endpoints: [\""
                            + cluster.endpoint(0) + "\"]\n    prefix: " + prefix
                            + "\n" + etcd_extra
                            + "files:\n"
                              "  - module: memcached_passwords\n"
                              "    path: run/memcached.auth\n");
  }

  ~late_node() {
    if (mcfgd) {
      mcfgd->signal(SIGKILL);
      mcfgd->wait_exit(5s);
    }
  }

  void start() {
    mcfgd = std::make_unique<child_process>(
      std::vector<std::string>{MCFGD, "--config", node_yaml}, dir / "mcfgd.out",
      err, /*append=*/true);
  }

  /// Stops mcfgd with SIGTERM; its exit code.
  std::optional<int> stop() {
    mcfgd->signal(SIGTERM);
    auto code = mcfgd->wait_exit_code(10s);
    mcfgd.reset();
    return code;
  }

  /// Once the node logged that it waits for etcd (its first read, which
  /// tries for a few seconds, is over).
  bool waiting() const {
    return eventually(
      [&] {
        return log().find("starting: source unreachable since")
               != std::string::npos;
      },
      20s);
  }

  run_result ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {MCFGCTL, "--config", node_yaml});
    return run(dir, std::move(args), 30s);
  }

  bool healthy() {
    return ctl({"health"}).exit_code == 0;
  }

  std::string log() const {
    return read_file(err);
  }
};

ino_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

} // namespace

TEST_CASE("late etcd: while its only member is down the node stays up, "
          "writes no file and answers 503 naming the wait, and once the "
          "member is back it writes the users and turns healthy") {
  REQUIRE(etcd_installed());
  late_node n;
  n.cluster.kill_member(0);
  n.start();
  REQUIRE_MESSAGE(n.waiting(), n.log());

  auto health = n.ctl({"health"});
  CHECK(health.exit_code == 1);
  CHECK(health.out.find("starting: source unreachable since")
        != std::string::npos);
  CHECK(health.out.find("not yet written (the node is starting)")
        != std::string::npos);
  auto sync = n.ctl({"sync"});
  CHECK(sync.exit_code != 0);
  CHECK(sync.err.find("HTTP 503") != std::string::npos);
  CHECK(sync.err.find("starting: source unreachable") != std::string::npos);
  // Tried again, never given up on: still running, still nothing written.
  CHECK(eventually(
    [&] { return n.log().find("next try in") != n.log().rfind("next try in"); },
    20s));
  CHECK(n.mcfgd->wait_exit_code(0ms) == std::nullopt);
  CHECK_FALSE(fs::exists(n.auth));

  n.cluster.restart_member(0);
  REQUIRE_MESSAGE(eventually([&] { return fs::exists(n.auth); }, 40s), n.log());
  CHECK(read_file(n.auth) == "alice:" + password + "\n");
  CHECK(eventually([&] { return n.healthy(); }, 10s));
  CHECK(n.ctl({"sync"}).exit_code == 0);
  CHECK(n.log().find(password) == std::string::npos);
  CHECK(n.stop() == 0);
}

TEST_CASE("late etcd: SIGTERM while the node waits for etcd stops it with "
          "exit 0 within 2 s, and nothing is written") {
  REQUIRE(etcd_installed());
  late_node n;
  n.cluster.kill_member(0);
  n.start();
  REQUIRE_MESSAGE(n.waiting(), n.log());
  n.mcfgd->signal(SIGTERM);
  CHECK(n.mcfgd->wait_exit_code(2s) == 0);
  n.mcfgd.reset();
  CHECK_FALSE(fs::exists(n.auth));
  CHECK(n.log().find("stopping before the source answered")
        != std::string::npos);
}

TEST_CASE("late etcd: the file of an earlier run stays untouched while etcd "
          "is down, and status says the node serves it") {
  REQUIRE(etcd_installed());
  late_node n;
  n.start();
  REQUIRE_MESSAGE(eventually([&] { return n.healthy(); }, 20s), n.log());
  REQUIRE(n.stop() == 0);
  auto inode = inode_of(n.auth);
  REQUIRE(inode != 0);

  n.cluster.kill_member(0);
  n.start();
  REQUIRE_MESSAGE(n.waiting(), n.log());
  auto status = n.ctl({"status"});
  CHECK(status.out.find("kept as an earlier run wrote it")
        != std::string::npos);
  CHECK(n.log().find("ready: serving the files of an earlier run")
        != std::string::npos);
  CHECK(inode_of(n.auth) == inode);
  CHECK(read_file(n.auth) == "alice:" + password + "\n");
  CHECK_FALSE(n.healthy());

  n.cluster.restart_member(0);
  CHECK(eventually([&] { return n.healthy(); }, 40s));
  CHECK(n.stop() == 0);
}

TEST_CASE("late etcd: an etcd TLS CA file that cannot be read is bad "
          "configuration: exit 2 at once, nothing written") {
  REQUIRE(etcd_installed());
  late_node n{"    tls: {ca: /nonexistent/etcd-ca.pem}\n"};
  n.start();
  CHECK(n.mcfgd->wait_exit_code(5s) == 2);
  n.mcfgd.reset();
  CHECK(n.log().find("etcd TLS CA file /nonexistent/etcd-ca.pem")
        != std::string::npos);
  CHECK_FALSE(fs::exists(n.auth));
}
