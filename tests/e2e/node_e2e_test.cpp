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

/// mcfgd on `dir`'s cluster.yaml and a node.yaml of `yaml` (the `files:`
/// list and anything else but `control`), answering mcfgctl on its default
/// control socket. Started by the constructor, once the socket is there.
struct controlled_node {
  const temp_dir& dir;
  std::unique_ptr<child_process> mcfgd;

  controlled_node(const temp_dir& d, const std::string& yaml) : dir(d) {
    write_text(dir / "node.yaml", "source: cluster.yaml\n" + yaml);
    mcfgd = std::make_unique<child_process>(
      std::vector<std::string>{MCFGD, "--config", dir / "node.yaml"},
      dir / "out", dir / "err");
    REQUIRE(eventually([&] { return fs::exists(dir / "mcfgd.sock"); }));
  }

  run_result ctl(std::vector<std::string> args) const {
    args.insert(args.begin(), {MCFGCTL, "--config", dir / "node.yaml"});
    return run(dir, std::move(args));
  }

  std::string log() const {
    return read_file(dir / "err");
  }

  /// SIGTERM; its exit code.
  int stop() {
    mcfgd->signal(SIGTERM);
    return mcfgd->wait_exit_code(20s).value_or(-3);
  }
};

} // namespace

TEST_CASE("mcfgd refuses bad configuration with exit 2, a located message, "
          "and writes nothing") {
  temp_dir dir;
  auto node_yaml = dir / "node.yaml";
  write_text(dir / "cluster.yaml",
             "users:\n  alice: {password: " + alice_pw + "}\n");
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
     node_yaml
       + ": cannot read the node configuration: No such file or "
         "directory"},
    {"bad YAML", "source: [cluster.yaml\n", "", node_yaml + ":2:"},
    {"unknown module", good + "  - module: memcached_foo\n    path: run/x\n",
     "", node_yaml + ":5:13: files[1].module"},
    {"bad duration", good + "retry: {interval: 10}\n", "",
     node_yaml + ":5:19: retry.interval"},
    {"bad mode", good + "    mode: rw\n", "",
     node_yaml + ":5:11: files[0].mode"},
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
  CHECK(r.out.find("== " + f.auth
                   + " (memcached_passwords) ==\n"
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
                       "  alice: {password: "
                         + alice_pw
                         + ", roles: [admin]}\n"
                           "  bob: {password: "
                         + bob_new_pw
                         + ", roles: [reader]}\n"
                           "  carol: {password: "
                         + carol_pw + "}\n");
  synced = f.ctl({"sync"});
  CHECK(synced.exit_code == 0);
  CHECK(read_file(f.auth)
        == "alice:" + alice_pw + "\nbob:" + bob_new_pw + "\ncarol:" + carol_pw
             + "\n");
  // memcached applies a SIGHUP at its next clock tick (once a second).
  CHECK(eventually([&] { return f.login("carol", carol_pw); }));
  CHECK(f.login("bob", bob_new_pw));
  CHECK(f.refused("bob", bob_pw));
  CHECK(f.login("alice", alice_pw));
  CHECK(read_file(f.perms).find("\"carol\":{\"roles\":[]}")
        != std::string::npos);

  auto status = f.ctl({"status", "--all"});
  CHECK(status.exit_code == 0);
  CHECK(status.out.find(f.auth
                        + "\n  applied version 2, confirmed version - (no "
                          "consumer check), state idle")
        != std::string::npos);
  CHECK(status.out.find("version 2  (inotify)") != std::string::npos);
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
    write_text(f.source, "users:\n  alice: {password: " + alice_pw
                           + "}\n"
                             "  bob: {password: "
                           + bob_new_pw + "}\n");
    std::this_thread::sleep_for(3s);
    CHECK(fs::is_directory(f.auth));
    fs::remove_all(f.auth);
    CHECK(f.ctl({"sync"}).exit_code == 0);
    CHECK(read_file(f.auth)
          == "alice:" + alice_pw + "\nbob:" + bob_new_pw + "\n");
    CHECK(read_file(f.mcfgd_err).find("restarted child 'file1'")
          == std::string::npos);
  }
  SUBCASE("held 12 s") {
    block_with_directory(f.auth);
    write_text(f.source, "users:\n  alice: {password: " + alice_pw
                           + "}\n"
                             "  bob: {password: "
                           + bob_new_pw + "}\n");
    std::this_thread::sleep_for(12s);
    CHECK(fs::is_directory(f.auth));
    fs::remove_all(f.auth);
    CHECK(f.ctl({"sync"}).exit_code == 0);
    CHECK(read_file(f.auth)
          == "alice:" + alice_pw + "\nbob:" + bob_new_pw + "\n");
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

TEST_CASE("SIGHUP re-reads the source and rewrites every file, and the "
          "node keeps running") {
  node_fixture f;
  f.start();
  REQUIRE(f.ctl({"sync"}).exit_code == 0);
  auto auth = read_file(f.auth);
  auto perms = read_file(f.perms);
  for (int round = 1; round <= 2; ++round) {
    CAPTURE(round);
    // Someone edits the files by hand; only a rewrite puts them right.
    write_atomically(f.auth, "intruder:x\n");
    write_atomically(f.perms, "{}\n");
    f.mcfgd->signal(SIGHUP);
    CHECK(eventually([&] {
      return read_file(f.auth) == auth && read_file(f.perms) == perms;
    }));
    CHECK(process_alive(f.mcfgd->pid()));
  }
  // memcached re-reads on its own clock after the signal (up to a second
  // later): a re-read of round 1's restore may have caught round 2's hand
  // edit, and round 2's restore then comes after the file is back.
  CHECK(eventually([&] { return f.refused("intruder", "x"); }));
  auto log = read_file(f.mcfgd_err);
  CHECK(log.find("received SIGHUP: re-reading the source and rewriting "
                 "every file")
        != std::string::npos);
  CHECK(f.stop() == 0);
  f.check_no_secrets();
}

TEST_CASE("SIGTERM while renames keep failing leaves no temp file behind") {
  node_fixture f;
  f.start();
  REQUIRE(f.ctl({"sync"}).exit_code == 0);
  block_with_directory(f.auth);
  write_text(f.source, "users:\n  alice: {password: " + alice_pw
                         + "}\n"
                           "  bob: {password: "
                         + bob_new_pw + "}\n");
  // The new passwords wait in the temp file while the rename keeps failing.
  REQUIRE(eventually([&] { return fs::exists(f.auth + ".tmp"); }));
  CHECK(f.stop() == 0);
  CHECK_FALSE(fs::exists(f.auth + ".tmp"));
  CHECK_FALSE(fs::exists(f.perms + ".tmp"));
  CHECK(read_file(f.auth + "/keep") == "x"); // nothing of the fault lost
  f.check_no_secrets();
}

TEST_CASE("four files whose renames fail for 12 s: mcfgd keeps running and "
          "every file ends correct, and a fault that never clears is reported "
          "with its file, reason and restart count") {
  temp_dir dir;
  std::vector<std::string> paths;
  std::string files_yaml;
  for (auto name : {"a", "b", "c", "d"}) {
    paths.push_back(dir / ("run/" + std::string{name} + ".auth"));
    files_yaml += "  - module: memcached_passwords\n    path: run/"
                  + std::string{name} + ".auth\n";
  }
  write_text(dir / "cluster.yaml", source_of({{"alice", alice_pw}}));
  controlled_node node{dir, "retry: {interval: 100ms, deadline: 10s}\n"
                            "supervisor: {intensity: 3, period: 10s}\n"
                            "files:\n"
                              + files_yaml};
  REQUIRE(node.ctl({"sync"}).exit_code == 0);
  // A fault shared by every file (a read-only or full disk would do).
  for (auto& path : paths)
    block_with_directory(path);
  write_atomically(dir / "cluster.yaml", source_of({{"alice", bob_pw}}));
  std::this_thread::sleep_for(12s);
  // Every writer gave up once: four restarts within milliseconds.
  auto log = node.log();
  for (auto& path : paths)
    CHECK(log.find("gave up writing " + path) != std::string::npos);
  CHECK(process_alive(node.mcfgd->pid()));
  for (size_t i = 0; i < 3; ++i) {
    fs::remove_all(paths[i]);
    // `sync FILE` waits for that file alone, not for d's fault.
    CHECK(node.ctl({"sync", paths[i]}).exit_code == 0);
    CHECK(read_file(paths[i]) == auth_file_of({{"alice", bob_pw}}));
  }
  // d's fault never clears: its writer gives up again and again.
  CHECK(eventually(
    [&] {
      return node.log().find("give-up 2 since the file was last "
                             "written")
             != std::string::npos;
    },
    15s));
  auto status = node.ctl({"status"});
  CHECK(status.exit_code == 0);
  auto d_status = status.out.substr(status.out.find(paths[3] + "\n"));
  CHECK(d_status.find("  FAULT: failing for ") != std::string::npos);
  INFO(d_status);
  CHECK(d_status.find("s, 2 restarts; gave up writing " + paths[3]
                      + " after 10s of failures: last rename " + paths[3]
                      + ".tmp -> " + paths[3] + " failed: Is a directory")
        != std::string::npos);
  log = node.log();
  CHECK(log.find("restart limit") == std::string::npos);
  CHECK(process_alive(node.mcfgd->pid()));
  fs::remove_all(paths[3]);
  CHECK(node.ctl({"sync"}).exit_code == 0);
  CHECK(read_file(paths[3]) == auth_file_of({{"alice", bob_pw}}));
  CHECK(node.stop() == 0);
  for (auto& path : paths)
    CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK(node.log().find(bob_pw) == std::string::npos);
}

TEST_CASE("a refresh command slower than the write deadline: edits during it "
          "reach the file within a second each, no writer gives up, and "
          "exactly one more refresh runs after it") {
  temp_dir dir;
  auto auth = dir / "run/memcached.auth";
  auto runs = dir / "runs.log";
  auto slow = dir / "slow";
  write_text(dir / "cluster.yaml", source_of({{"alice", alice_pw}}));
  // One slow run (5 s, five times the deadline) when the flag is there.
  controlled_node node{dir,
                       "retry: {interval: 100ms, deadline: 1s}\n"
                       "files:\n"
                       "  - module: memcached_passwords\n"
                       "    path: run/memcached.auth\n"
                       "    refresh: {command: [sh, -c, 'if [ -e \"$1\" ]; "
                       "then rm \"$1\"; echo slow >> \"$0\"; sleep 5; fi; "
                       "echo run >> \"$0\"', "
                         + runs + ", " + slow + "]}\n"};
  REQUIRE(node.ctl({"sync"}).exit_code == 0);
  auto count_runs = [&] {
    auto text = read_file(runs);
    size_t n = 0;
    for (size_t pos = 0; (pos = text.find("run\n", pos)) != std::string::npos;
         ++pos)
      ++n;
    return n;
  };
  auto before = count_runs();
  write_text(slow, "");
  write_atomically(dir / "cluster.yaml", source_of({{"alice", bob_pw}}));
  REQUIRE(eventually(
    [&] { return read_file(runs).find("slow") != std::string::npos; }));
  // The slow refresh runs now. Each edit reaches the file within a second.
  std::string last;
  for (auto pw : {bob_new_pw, carol_pw, alice_pw + "x"}) {
    auto started = std::chrono::steady_clock::now();
    write_atomically(dir / "cluster.yaml", source_of({{"alice", pw}}));
    last = auth_file_of({{"alice", pw}});
    CHECK(eventually([&] { return read_file(auth) == last; }, 1s));
    std::this_thread::sleep_until(started + 1s);
  }
  CHECK(count_runs() == before); // the slow one is still running
  auto status = node.ctl({"--timeout", "1s", "status", "--all"});
  CHECK(status.exit_code == 0); // answered while the refresh runs
  CHECK(status.out.find("refresh " + auth + ": running") != std::string::npos);
  // The slow run ends; the three renames during it cause one more run.
  CHECK(eventually([&] { return count_runs() == before + 2; }, 8s));
  std::this_thread::sleep_for(1500ms);
  CHECK(count_runs() == before + 2);
  CHECK(node.ctl({"sync"}).exit_code == 0);
  CHECK(read_file(auth) == last);
  auto log = node.log();
  CHECK(log.find("gave up") == std::string::npos);
  CHECK(log.find("restarting") == std::string::npos);
  CHECK(node.stop() == 0);
}

TEST_CASE("two files with different refresh actions: one's failing refresh "
          "never delays the other's sync, and its own sync answers with the "
          "error at once") {
  temp_dir dir;
  auto auth = dir / "run/memcached.auth";
  auto perms = dir / "run/permissions.json";
  write_text(dir / "cluster.yaml", source_of({{"alice", alice_pw}}));
  controlled_node node{dir, "files:\n"
                            "  - module: memcached_passwords\n"
                            "    path: run/memcached.auth\n"
                            "    refresh: {signal: HUP, "
                            "pidfile: run/missing.pid}\n"
                            "  - module: memcached_permissions\n"
                            "    path: run/permissions.json\n"
                            "    refresh: {command: [\"true\"]}\n"};
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--timeout", "20s"});
    auto started = std::chrono::steady_clock::now();
    auto r = node.ctl(std::move(args));
    CHECK(std::chrono::steady_clock::now() - started < 5s); // no timeout
    return r;
  };
  write_atomically(dir / "cluster.yaml", source_of({{"alice", bob_pw}}));
  auto other = ctl({"sync", perms});
  CHECK(other.exit_code == 0);
  CHECK(read_file(perms).find("alice") != std::string::npos);
  auto failing = ctl({"sync", auth});
  CHECK(failing.exit_code == 1);
  CHECK(failing.err.find("refresh of " + auth + " failed: pidfile "
                         + dir / "run/missing.pid"
                         + ": No such file or directory")
        != std::string::npos);
  CHECK(read_file(auth) == auth_file_of({{"alice", bob_pw}})); // written
  auto all = ctl({"sync"});
  CHECK(all.exit_code == 1);
  CHECK(all.err.find("refresh of " + auth + " failed") != std::string::npos);
  auto status = ctl({"status"});
  CHECK(status.out.find("refresh " + auth + ": pending, 0 refreshes")
        != std::string::npos);
  CHECK(status.out.find("failures: pidfile ") != std::string::npos);
  CHECK(status.out.find("; next retry in ") != std::string::npos);
  CHECK(node.stop() == 0);
}

TEST_CASE("signal refresh through a stale pidfile: pid 1, mcfgd's own pid and "
          "another program than `expect` are refused, in status and log, "
          "and nothing is signalled") {
  temp_dir dir;
  auto auth = dir / "run/memcached.auth";
  auto pidfile = dir / "run/target.pid";
  child_process other{{"sleep", "60"}}; // got the pid memcached once had
  fs::create_directories(dir / "run");
  write_text(pidfile, std::to_string(other.pid()) + "\n");
  write_text(dir / "cluster.yaml", source_of({{"alice", alice_pw}}));
  // TERM, so that a signal that got through would end its target.
  controlled_node node{dir, "files:\n"
                            "  - module: memcached_passwords\n"
                            "    path: run/memcached.auth\n"
                            "    refresh: {signal: TERM, "
                            "pidfile: run/target.pid, "
                            "expect: memcached}\n"};
  auto exe = fs::read_symlink("/proc/" + std::to_string(other.pid()) + "/exe");
  auto refused_other = "pid " + std::to_string(other.pid()) + " from " + pidfile
                       + " is sleep (" + exe.string()
                       + "), not memcached; not signalled";
  auto synced = node.ctl({"sync", auth});
  CHECK(synced.exit_code == 1);
  CHECK(synced.err.find(refused_other) != std::string::npos);
  CHECK(node.ctl({"status"}).out.find(refused_other) != std::string::npos);
  CHECK(node.log().find(refused_other) != std::string::npos);

  write_text(pidfile, "1\n");
  synced = node.ctl({"sync", auth});
  CHECK(
    synced.err.find("pid 1 from " + pidfile + " is init; refusing to signal it")
    != std::string::npos);
  write_text(pidfile, std::to_string(node.mcfgd->pid()) + "\n");
  synced = node.ctl({"sync", auth});
  CHECK(synced.err.find("pid " + std::to_string(node.mcfgd->pid()) + " from "
                        + pidfile + " is mcfgd itself; refusing to signal it")
        != std::string::npos);
  CHECK(node.log().find("is mcfgd itself") != std::string::npos);
  CHECK(process_alive(node.mcfgd->pid()));
  CHECK_FALSE(other.wait_exit(100ms).has_value()); // never signalled
  CHECK(node.stop() == 0);
}

TEST_CASE("SIGTERM during a slow refresh command stops mcfgd at once, the "
          "command killed") {
  temp_dir dir;
  auto started_flag = dir / "started";
  write_text(dir / "cluster.yaml", source_of({{"alice", alice_pw}}));
  write_text(dir / "node.yaml",
             "source: cluster.yaml\n"
             "files:\n"
             "  - module: memcached_passwords\n"
             "    path: run/memcached.auth\n"
             "    refresh: {command: [sh, -c, 'echo $$ > \"$0\"; sleep 60', "
               + started_flag + "]}\n");
  child_process mcfgd{
    {MCFGD, "--config", dir / "node.yaml"}, dir / "out", dir / "err"};
  REQUIRE(eventually([&] {
    auto text = read_file(started_flag); // "<missing>" until it exists
    return !text.empty() && text.back() == '\n';
  }));
  auto command = static_cast<pid_t>(std::stol(read_file(started_flag)));
  auto stopped = std::chrono::steady_clock::now();
  mcfgd.signal(SIGTERM);
  CHECK(mcfgd.wait_exit_code(20s) == 0);
  CHECK(std::chrono::steady_clock::now() - stopped < 5s);
  CHECK(wait_gone(command, 5s));
}
