// mcfgd and mcfgctl as users run them: real processes, real files in a temp
// dir, a real memcached on a loopback port. Time here is real (these are the
// end-to-end tests); every wait is bounded.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "node_fixture.hpp"

using namespace mcfg::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string alice_pw = "Pw-alice-1";
const std::string bob_pw = "Pw-bob-1";
const std::string bob_new_pw = "Pw-bob-2";
const std::string carol_pw = "Pw-carol-1";

/// The node of these tests, with their passwords.
struct node_fixture : running_node {
  node_fixture() : running_node(alice_pw, bob_pw) {
  }

  void check_no_secrets() {
    running_node::check_no_secrets({alice_pw, bob_pw, bob_new_pw, carol_pw});
  }
};

} // namespace

TEST_CASE("mcfgd refuses bad configuration with exit 2, a located message, "
          "and writes nothing") {
  temp_dir dir;
  auto node_yaml = dir / "node.yaml";
  write_text(dir / "cluster.yaml", "users:\n  alice: {password: " + alice_pw
                                     + "}\n");
  auto good = std::string{"source: cluster.yaml\nfiles:\n"
                          "  - module: memcached_passwords\n"
                          "    path: run/auth\n"};
  struct bad_case {
    const char* what;
    std::string node_yaml;
    std::string source;
    std::string expected;
  };
  std::vector<bad_case> cases = {
    {"missing node.yaml", "", "",
     node_yaml + ": cannot read the node configuration: No such file or "
                 "directory"},
    {"bad YAML", "source: [cluster.yaml\n", "", node_yaml + ":2:"},
    {"unknown module", good + "  - module: memcached_foo\n    path: run/x\n",
     "", node_yaml + ":5:13: files[1].module"},
    {"bad duration", good + "retry: {interval: 10}\n", "",
     node_yaml + ":5:19: retry.interval"},
    {"bad mode", good + "    mode: rw\n", "", node_yaml + ":5:11: files[0].mode"},
    {"unknown key", good + "retries: 3\n", "", node_yaml + ":5:1: retries"},
    {"a user memcached would misread", good,
     "users:\n  alice: {password: " + alice_pw + "}\n  'b:c': {password: x}\n",
     dir / "cluster.yaml" + ":3:3: users/b:c"},
    {"a source that does not parse", good, "users:\n  alice: {password: x\n",
     dir / "cluster.yaml" + ":"},
  };
  for (auto& c : cases) {
    auto what = std::string{c.what};
    CAPTURE(what);
    fs::remove(node_yaml);
    if (!c.node_yaml.empty())
      write_text(node_yaml, c.node_yaml);
    if (!c.source.empty())
      write_text(dir / "cluster.yaml", c.source);
    auto r = run(dir, {MCFGD, "--config", node_yaml});
    CAPTURE(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.expected) != std::string::npos);
    CHECK(r.err.find("nothing written") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "run"));
    CHECK(r.err.find(alice_pw) == std::string::npos);
  }
}

TEST_CASE("mcfgd --check resolves relative paths against node.yaml's folder "
          "and masks passwords") {
  node_fixture f;
  auto r = run(f.dir, {MCFGD, "--config", f.node_yaml, "--check"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("== " + f.auth + " (memcached_passwords) ==\n"
                   "alice:********\nbob:********\n")
        != std::string::npos);
  CHECK(r.out.find(f.perms) != std::string::npos);
  CHECK(r.out.find(alice_pw) == std::string::npos);
  CHECK(r.out.find(bob_pw) == std::string::npos);
  CHECK_FALSE(fs::exists(f.dir / "run")); // --check writes nothing
}

TEST_CASE("end to end: an edited source reaches a real memcached after "
          "mcfgctl sync, and old credentials are refused") {
  node_fixture f;
  f.start();
  auto synced = f.ctl({"sync"});
  REQUIRE(synced.exit_code == 0);
  CHECK(eventually([&] { return f.login("alice", alice_pw); }));
  CHECK(f.login("bob", bob_pw));
  CHECK(f.refused("carol", carol_pw));
  CHECK(read_file(f.auth) == "alice:" + alice_pw + "\nbob:" + bob_pw + "\n");

  // Add a user and change a password.
  write_text(f.source, "users:\n"
                       "  alice: {password: " + alice_pw + ", roles: [admin]}\n"
                       "  bob: {password: " + bob_new_pw + ", roles: [reader]}\n"
                       "  carol: {password: " + carol_pw + "}\n");
  synced = f.ctl({"sync"});
  CHECK(synced.exit_code == 0);
  CHECK(read_file(f.auth) == "alice:" + alice_pw + "\nbob:" + bob_new_pw
                               + "\ncarol:" + carol_pw + "\n");
  // memcached applies a SIGHUP at its next clock tick (once a second).
  CHECK(eventually([&] { return f.login("carol", carol_pw); }));
  CHECK(f.login("bob", bob_new_pw));
  CHECK(f.refused("bob", bob_pw));
  CHECK(f.login("alice", alice_pw));
  CHECK(read_file(f.perms).find("\"carol\":{\"roles\":[]}") != std::string::npos);

  auto status = f.ctl({"status"});
  CHECK(status.exit_code == 0);
  CHECK(status.out.find(f.auth + "\n  state idle") != std::string::npos);
  CHECK(f.ctl({"sync", "/no/such/file"}).exit_code == 1);
  CHECK(f.stop() == 0);
  f.check_no_secrets();
}

TEST_CASE("a rename fault in the running node: a short one is ridden out, "
          "a long one restarts the writer, and mcfgd keeps running") {
  node_fixture f;
  f.start();
  REQUIRE(f.ctl({"sync"}).exit_code == 0);

  SUBCASE("held 3 s") {
    block_with_directory(f.auth);
    write_text(f.source, "users:\n  alice: {password: " + alice_pw + "}\n"
                         "  bob: {password: " + bob_new_pw + "}\n");
    std::this_thread::sleep_for(3s);
    CHECK(fs::is_directory(f.auth));
    fs::remove_all(f.auth);
    CHECK(f.ctl({"sync"}).exit_code == 0);
    CHECK(read_file(f.auth) == "alice:" + alice_pw + "\nbob:" + bob_new_pw
                                 + "\n");
    CHECK(read_file(f.mcfgd_err).find("restarted child 'file1'")
          == std::string::npos);
  }
  SUBCASE("held 12 s") {
    block_with_directory(f.auth);
    write_text(f.source, "users:\n  alice: {password: " + alice_pw + "}\n"
                         "  bob: {password: " + bob_new_pw + "}\n");
    std::this_thread::sleep_for(12s);
    CHECK(fs::is_directory(f.auth));
    fs::remove_all(f.auth);
    CHECK(f.ctl({"sync"}).exit_code == 0);
    CHECK(read_file(f.auth) == "alice:" + alice_pw + "\nbob:" + bob_new_pw
                                 + "\n");
    auto log = read_file(f.mcfgd_err);
    CHECK(log.find("child 'file1' exited: gave up writing " + f.auth)
          != std::string::npos);
    CHECK(log.find("restarted child 'file1'") != std::string::npos);
    CHECK(eventually([&] { return f.login("bob", bob_new_pw); }));
  }
  CHECK(process_alive(f.mcfgd->pid()));
  CHECK_FALSE(fs::exists(f.auth + ".tmp"));
  CHECK(f.stop() == 0);
  f.check_no_secrets();
}

TEST_CASE("a fault that outlasts the restart budget makes mcfgd exit 1, "
          "naming the child and the reason") {
  temp_dir dir;
  write_text(dir / "cluster.yaml", "users:\n  alice: {password: " + alice_pw
                                     + "}\n");
  // A short deadline, so four restarts fit in the 10 s window.
  write_text(dir / "node.yaml", "source: cluster.yaml\n"
                                "retry: {interval: 100ms, deadline: 500ms}\n"
                                "supervisor: {intensity: 3, period: 10s}\n"
                                "files:\n"
                                "  - module: memcached_passwords\n"
                                "    path: run/memcached.auth\n");
  fs::create_directories(dir / "run");
  block_with_directory(dir / "run/memcached.auth");
  child_process mcfgd{{MCFGD, "--config", dir / "node.yaml"}, dir / "out",
                      dir / "err"};
  auto code = mcfgd.wait_exit_code(30s);
  REQUIRE(code.has_value());
  CHECK(*code == 1);
  auto err = read_file(dir / "err");
  CHECK(err.find("mcfgd: root supervisor gave up: supervisor root reached "
                 "its restart limit (3 in 10s) after child 'file1' failed: "
                 "gave up writing " + dir / "run/memcached.auth")
        != std::string::npos);
  CHECK(err.find("Is a directory") != std::string::npos);
  CHECK(read_file(dir / "run/memcached.auth/keep") == "x"); // nothing lost
  CHECK_FALSE(fs::exists(dir / "run/memcached.auth.tmp"));
  CHECK(err.find(alice_pw) == std::string::npos);
}

TEST_CASE("a slow refresh command never blocks a writer: its rename is "
          "retried until the refresh is done") {
  temp_dir dir;
  auto auth = dir / "run/memcached.auth";
  write_text(dir / "cluster.yaml", "users:\n  alice: {password: " + alice_pw
                                     + "}\n");
  write_text(dir / "node.yaml", "source: cluster.yaml\nfiles:\n"
                                "  - module: memcached_passwords\n"
                                "    path: run/memcached.auth\n"
                                "    refresh: {command: [sleep, \"3\"]}\n");
  child_process mcfgd{{MCFGD, "--config", dir / "node.yaml", "--log-level",
                       "debug"},
                      dir / "out", dir / "err"};
  REQUIRE(eventually([&] { return fs::exists(auth); }));
  REQUIRE(eventually([&] { return fs::exists(dir / "mcfgd.sock"); }));
  // The first refresh (3 s) runs now; an edit arrives meanwhile.
  write_atomically(dir / "cluster.yaml",
                   "users:\n  alice: {password: " + bob_pw + "}\n");
  std::this_thread::sleep_for(1s);
  // The writer still answers at once, retrying its rename.
  auto status = run(dir, {MCFGCTL, "--config", dir / "node.yaml", "--timeout", "1s", "status"});
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("state retrying") != std::string::npos);
  CHECK(status.out.find("Device or resource busy") != std::string::npos);
  CHECK(status.out.find("refresher: busy running a refresh") != std::string::npos);
  CHECK(read_file(auth) == "alice:" + alice_pw + "\n");
  // Once the refresh is done, the rename goes through.
  CHECK(eventually([&] { return read_file(auth) == "alice:" + bob_pw + "\n"; },
                   5s));
  CHECK(run(dir, {MCFGCTL, "--config", dir / "node.yaml", "sync"}).exit_code == 0);
  mcfgd.signal(SIGTERM);
  CHECK(mcfgd.wait_exit_code(20s) == 0);
}
