// "In step" means memcached lets them in (README "Sync"): a node whose auth
// file's refresh has `verify: {memcached: HOST:PORT}`, against Debian's
// memcached. Each `mcfgctl sync` is followed at once, with no wait, by
// logins that must agree with the version just synced; and a file memcached
// cannot load is reported as not confirmed, with the reason.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <thread>

#include "node_harness.hpp"
#include "support/memcached_client.hpp"
#include "support/memcached_server.hpp"

using namespace mcfg::test;
namespace fs = std::filesystem;

namespace {

/// One user of the source: password and role.
struct account {
  std::string password;
  std::string role = "reader";
};

using accounts = std::map<std::string, account>;

std::string source_yaml(const accounts& users) {
  std::string out = "users:\n";
  for (auto& [name, a] : users)
    out += "  " + name + ": {password: " + a.password + ", roles: [" + a.role
           + "]}\n";
  return out;
}

std::string auth_file(const accounts& users) {
  std::string out;
  for (auto& [name, a] : users)
    out += name + ":" + a.password + "\n";
  return out;
}

/// A node with one verified file, and the memcached that reads it, started
/// first (as on a machine where memcached runs already).
struct verified_node {
  temp_dir dir;
  std::string node_yaml = dir / "node.yaml";
  std::string source = dir / "cluster.yaml";
  std::string auth = dir / "run/memcached.auth";
  std::string err = dir / "mcfgd.err";
  uint16_t port = free_loopback_port();
  std::unique_ptr<memcached_server> memcached;
  std::unique_ptr<child_process> mcfgd;
  /// Every output seen, for the secrets check.
  std::string outputs;

  ~verified_node() {
    if (mcfgd) {
      mcfgd->signal(SIGKILL);
      mcfgd->wait_exit(5s);
    }
  }

  /// memcached (as `user`) on an auth file of `users`, then mcfgd with a
  /// verify timeout of `timeout`; returns once the node is healthy.
  void start(const accounts& users, const std::string& user = "root",
             const std::string& timeout = "5s") {
    write_text(source, source_yaml(users));
    fs::create_directories(dir / "run");
    write_text(auth, auth_file(users));
    memcached_options opts;
    opts.auth_file = auth;
    opts.pidfile = dir / "run/memcached.pid";
    opts.port = port;
    opts.user = user;
    memcached = std::make_unique<memcached_server>(opts);
    write_text(node_yaml,
               "source: cluster.yaml\n"
               "files:\n"
               "  - module: memcached_passwords\n"
               "    path: run/memcached.auth\n"
               "    refresh: {signal: HUP, pidfile: run/memcached.pid, "
               "expect: memcached, verify: {memcached: \"127.0.0.1:"
                 + std::to_string(port) + "\", timeout: " + timeout + "}}\n");
    mcfgd = std::make_unique<child_process>(
      std::vector<std::string>{MCFGD, "--config", node_yaml}, dir / "mcfgd.out",
      err);
    REQUIRE_MESSAGE(eventually([&] { return health().exit_code == 0; }, 15s),
                    read_file(err));
    // Healthy may come while the first version is still being checked: a
    // sync waits for its verdict, so the tests start from a confirmed one.
    auto synced = ctl({"sync"});
    REQUIRE_MESSAGE(synced.exit_code == 0, synced.err);
    REQUIRE(synced.out.find("version 1 confirmed") != std::string::npos);
  }

  run_result ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {MCFGCTL, "--config", node_yaml});
    auto r = run(dir, std::move(args), 30s);
    outputs += r.out + r.err;
    return r;
  }

  run_result health() {
    return ctl({"health"});
  }

  bool login(const std::string& user, const std::string& pw) {
    return try_login(memcached->port(), user, pw).accepted();
  }

  bool refused(const std::string& user, const std::string& pw) {
    return try_login(memcached->port(), user, pw).refused();
  }

  /// None of `passwords` in any answer, output or log seen.
  void check_no_secrets(const std::set<std::string>& passwords) {
    auto all = outputs + read_file(err) + read_file(dir / "mcfgd.out");
    for (auto& pw : passwords) {
      CAPTURE(pw);
      CHECK(all.find(pw) == std::string::npos);
    }
  }
};

/// What memcached must do right after a sync of `now`: let every current
/// credential in, refuse every one the source held before and no longer
/// does. The number of logins that disagreed.
int disagreements(verified_node& n, const accounts& now,
                  const std::set<std::pair<std::string, std::string>>& gone) {
  int out = 0;
  for (auto& [name, a] : now)
    if (!n.login(name, a.password)) {
      MESSAGE("memcached refused current user " << name);
      ++out;
    }
  for (auto& [name, pw] : gone)
    if (!n.refused(name, pw)) {
      MESSAGE("memcached let in user " << name << " with a gone password");
      ++out;
    }
  return out;
}

} // namespace

TEST_CASE("verify: after each of 20 syncs (adds, changes, removals and "
          "roles-only edits at different phases of memcached's reload "
          "clock) memcached at once agrees with the version synced") {
  REQUIRE(memcached_installed());
  verified_node n;
  accounts users{{"alice", {"Pw-alice-0", "admin"}}, {"bob", {"Pw-bob-0"}}};
  n.start(users);
  std::set<std::string> passwords{"Pw-alice-0", "Pw-bob-0"};
  std::set<std::pair<std::string, std::string>> gone;
  int disagreed = 0;
  int next_user = 0;
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    // Spread the edits over memcached's once-a-second reload tick.
    std::this_thread::sleep_for(std::chrono::milliseconds(round * 173 % 1000));
    auto kind = round % 4;
    if (kind == 0 || users.size() < 2) { // add a user
      auto name = "user" + std::to_string(next_user++);
      users[name] = {"Pw-" + name + "-" + std::to_string(round)};
    } else if (kind == 1) { // change a password
      auto& [name, a] = *users.begin();
      gone.insert({name, a.password});
      a.password = "Pw-" + name + "-" + std::to_string(round);
    } else if (kind == 2) { // remove a user
      auto last = std::prev(users.end());
      gone.insert({last->first, last->second.password});
      users.erase(last);
    } else { // roles only: the auth file does not change
      auto& a = users.begin()->second;
      a.role = a.role == "admin" ? "reader" : "admin";
    }
    for (auto& [name, a] : users)
      passwords.insert(a.password);
    write_atomically(n.source, source_yaml(users));
    auto synced = n.ctl({"sync"});
    REQUIRE_MESSAGE(synced.exit_code == 0, synced.err);
    // At once: the sync's answer is the proof, not a later poll.
    disagreed += disagreements(n, users, gone);
    CHECK(read_file(n.auth) == auth_file(users));
    if (kind == 3 && users.size() >= 2) {
      CHECK(synced.out.find("not verifiable") != std::string::npos);
      CHECK(synced.out.find("confirmed: ") == std::string::npos);
    } else {
      CHECK(synced.out.find(" confirmed: its consumer was shown to enforce "
                            "it")
            != std::string::npos);
    }
  }
  CHECK(disagreed == 0);
  auto status = n.ctl({"status", "--all", "--json"});
  REQUIRE(status.exit_code == 0);
  CHECK(status.out.find("\"confirmed_version\": null") == std::string::npos);
  CHECK(status.out.find("\"confirmed_version\": ") != std::string::npos);
  CHECK(n.health().exit_code == 0);
  n.check_no_secrets(passwords);
}

TEST_CASE("verify: an auth file memcached cannot read is not confirmed: "
          "sync fails and health is 503, naming the new user and the "
          "reason, never a password") {
  REQUIRE(memcached_installed());
  if (::geteuid() != 0) {
    MESSAGE("skipped: needs root to run memcached as another user");
    return;
  }
  verified_node n;
  // memcached runs as nobody, as Debian's runs as memcache: it can read the
  // file it starts with (0644), not the 0600 files mcfgd renames into place.
  ::chmod(n.dir.path.c_str(), 0755);
  accounts users{{"alice", {"Pw-alice-1"}}};
  n.start(users, "nobody", "2s");
  CHECK(n.login("alice", "Pw-alice-1"));
  users["carol"] = {"Pw-carol-1"};
  write_atomically(n.source, source_yaml(users));
  auto synced = n.ctl({"sync"});
  CHECK(synced.exit_code == 1);
  INFO(synced.err);
  CHECK(synced.err.find("run/memcached.auth: version 2 not confirmed")
        != std::string::npos);
  CHECK(synced.err.find("carol") != std::string::npos);
  CHECK(synced.err.find("cannot read") != std::string::npos);
  // The file holds the version; memcached kept its previous users.
  CHECK(read_file(n.auth) == auth_file(users));
  CHECK(n.refused("carol", "Pw-carol-1"));
  CHECK(n.login("alice", "Pw-alice-1"));
  auto health = n.health();
  CHECK(health.exit_code == 1);
  CHECK(health.out.find("version 2 not confirmed") != std::string::npos);
  auto status = n.ctl({"status", "--json"});
  CHECK(status.out.find("\"confirmed_version\": 1") != std::string::npos);
  CHECK(status.out.find("\"state\": \"failed\"") != std::string::npos);
  n.check_no_secrets({"Pw-alice-1", "Pw-carol-1"});
}
