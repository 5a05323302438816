#pragma once
// A running node for the end-to-end tests: mcfgd on a node.yaml of two files
// (memcached's auth file, refreshed by SIGHUP, and a permissions file), and
// a real memcached reading the auth file. Needs MCFGD and MCFGCTL defined.
#include <memory>
#include <string>
#include <vector>

#include "node_harness.hpp"
#include "raw_http.hpp"
#include "support/memcached_client.hpp"
#include "support/memcached_server.hpp"

namespace mcfg::test {

struct running_node {
  temp_dir dir;
  std::string node_yaml = dir / "node.yaml";
  std::string source = dir / "cluster.yaml";
  std::string auth = dir / "run/memcached.auth";
  std::string perms = dir / "run/permissions.json";
  std::string socket = dir / "mcfgd.sock";
  std::string mcfgd_err = dir / "mcfgd.err";
  std::unique_ptr<child_process> mcfgd;
  std::unique_ptr<memcached_server> memcached;
  /// Every answer and output seen, for the secrets check.
  std::string outputs;

  /// Users alice (admin) and bob (reader) with these passwords; `control`
  /// is node.yaml's control section, if any.
  running_node(const std::string& alice_pw, const std::string& bob_pw,
               const std::string& control = {}) {
    write_text(source, "users:\n"
                       "  alice: {password: "
                         + alice_pw
                         + ", roles: [admin]}\n"
                           "  bob: {password: "
                         + bob_pw + ", roles: [reader]}\n");
    write_text(node_yaml,
               "source: cluster.yaml\n"
               "retry: {interval: 100ms, deadline: 10s}\n"
               "supervisor: {intensity: 3, period: 10s}\n"
               "files:\n"
               "  - module: memcached_passwords\n"
               "    path: run/memcached.auth\n"
               "    refresh: {signal: HUP, pidfile: run/memcached.pid}\n"
               "  - module: memcached_permissions\n"
               "    path: run/permissions.json\n"
               "    mode: \"0640\"\n"
                 + control);
  }

  ~running_node() {
    if (mcfgd) {
      mcfgd->signal(SIGKILL);
      mcfgd->wait_exit(std::chrono::seconds(5));
    }
  }

  running_node(const running_node&) = delete;
  running_node& operator=(const running_node&) = delete;

  /// Starts mcfgd, then memcached on its auth file; returns once the node
  /// is healthy (the refresh at start may have found no pidfile yet: it is
  /// retried every second).
  void start() {
    mcfgd = std::make_unique<child_process>(
      std::vector<std::string>{MCFGD, "--config", node_yaml, "--log-level",
                               "debug"},
      dir / "mcfgd.out", mcfgd_err);
    REQUIRE(eventually([&] {
      return read_file(mcfgd_err).find("control: listening on unix:")
               != std::string::npos
             && std::filesystem::exists(auth);
    }));
    memcached_options opts;
    opts.auth_file = auth;
    opts.pidfile = dir / "run/memcached.pid";
    memcached = std::make_unique<memcached_server>(opts);
    REQUIRE(eventually([&] { return call("GET", "/healthz").status == 200; },
                       std::chrono::seconds(10)));
  }

  http_target local() const {
    return {socket, 0};
  }

  /// One request on the control socket.
  http_reply call(const std::string& method, const std::string& path,
                  const std::string& body = {}) {
    auto r = http_call(local(), method, path, body);
    outputs += r.raw;
    return r;
  }

  /// mcfgctl --config node.yaml ARGS...
  run_result ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {MCFGCTL, "--config", node_yaml});
    auto r = run(dir, std::move(args));
    outputs += r.out + r.err;
    return r;
  }

  bool login(const std::string& user, const std::string& pw) {
    return try_login(memcached->port(), user, pw).accepted();
  }

  bool refused(const std::string& user, const std::string& pw) {
    return try_login(memcached->port(), user, pw).refused();
  }

  /// Stops mcfgd with SIGTERM; its exit code.
  int stop() {
    mcfgd->signal(SIGTERM);
    auto code = mcfgd->wait_exit_code(std::chrono::seconds(20));
    return code.value_or(-3);
  }

  /// None of `passwords` in any answer, output or log seen.
  void check_no_secrets(const std::vector<std::string>& passwords) {
    auto all = outputs + read_file(mcfgd_err) + read_file(dir / "mcfgd.out");
    for (auto& pw : passwords) {
      CAPTURE(pw);
      CHECK(all.find(pw) == std::string::npos);
    }
  }
};

} // namespace mcfg::test
