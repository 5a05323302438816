// mcfgd's `files` supervisor under the test_coordinator, with the fake file
// port: a fault shared by every file is ridden out, a fault that never clears
// is reported, and no stop leaves a temp file behind.
#include <doctest/doctest.h>

#include <cerrno>

#include <caf/send.hpp>

#include "actors/fake_file_port.hpp"
#include "memcached_cfg/node/node_tree.hpp"
#include "memcached_cfg/programs/supervisor_log.hpp"
#include "memcached_cfg/supervision/supervisor.hpp"
#include "support/actor_probes.hpp"
#include "support/coordinator_fixture.hpp"
#include "support/log_capture.hpp"
#include "support/memcached_server.hpp" // free_loopback_port
#include "support/user_value.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

struct files_fixture : coordinator_fixture {
  std::shared_ptr<fake_file_port> port = std::make_shared<fake_file_port>();
  std::shared_ptr<source_of_truth> truth = source_of_truth::make(
    {{"users/alice", user("Pw-1")}});
  node_config cfg;
  log_capture logs;
  /// The supervisors' lines (restarts) in the captured log, as in mcfgd.
  sup::log::handler previous_handler = log_supervisors_to_mcfg_log();
  sup::supervisor_actor root;
  watcher root_exits;

  files_fixture() {
    for (auto path : {"/srv/f1", "/srv/f2", "/srv/f3", "/srv/f4"}) {
      file_config file;
      file.path = path;
      file.module = find_module("memcached_passwords");
      cfg.files.push_back(file);
    }
    root = sup::spawn_supervisor(sys, root_flags(cfg),
                                 {files_child(cfg, truth, port,
                                              /*pool=*/nullptr)});
    root_exits = watch(sys, root);
    run();
  }

  ~files_fixture() {
    caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    run();
    sup::log::set_handler(std::move(previous_handler));
  }

  std::string file(size_t i) const {
    auto found = port->files.find(cfg.files[i].path);
    return found == port->files.end() ? "<missing>" : found->second;
  }

  bool tmp_exists(size_t i) const {
    return port->files.count(cfg.files[i].path + ".tmp") > 0;
  }

  writer_status status(size_t i) {
    auto writer = sys.registry().get<memcached_cfg_actor>(writer_child_id(i));
    REQUIRE(writer);
    auto st = ask<writer_status>(sys, writer, status_atom::value);
    run();
    REQUIRE(st->value);
    return *st->value;
  }

  sup::supervisor_actor files_supervisor() {
    return sys.registry().get<sup::supervisor_actor>(files_child_id);
  }

  /// Moves time by `d` in the writers' retry steps.
  void advance_by(caf::timespan d) {
    for (auto t = caf::timespan{0}; t < d; t += 100ms)
      advance(100ms);
  }
};

} // namespace

TEST_CASE("the files budget holds every restart a shared write fault can "
          "cause in one period") {
  node_config cfg;
  cfg.files.resize(4);
  auto flags = files_flags(cfg); // deadline 10s, period 10s
  CHECK(flags.name == "files");
  CHECK(flags.how == sup::strategy::one_for_one);
  CHECK(flags.period == caf::timespan{10s});
  CHECK(flags.intensity == 8); // 4 files, each at most twice in 10 s
  cfg.files.resize(3);
  cfg.retry_deadline = 2s;
  CHECK(files_flags(cfg).intensity == 18); // 3 files, each 6 times in 10 s
  cfg.files.resize(1);
  CHECK(files_flags(cfg).intensity == 6);
  cfg.retry_deadline = 1min;
  CHECK(files_flags(cfg).intensity == 3); // never below node.yaml's own
}

TEST_CASE_FIXTURE(files_fixture,
                  "four files whose renames fail for 12 s: every writer "
                  "restarts once, the node keeps running, and every file "
                  "ends correct") {
  for (size_t i = 0; i < 4; ++i)
    REQUIRE(file(i) == "alice:Pw-1\n");
  auto files_sup = files_supervisor();
  REQUIRE(files_sup);
  port->rename_error = EISDIR; // a fault shared by every file
  truth->publish({{"users/alice", user("Pw-2")}});
  run();
  advance_by(12s);
  CHECK(logs.count("restarting it") == 4); // each writer gave up once
  port->rename_error = 0;
  advance(100ms);
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(file(i) == "alice:Pw-2\n");
    CHECK_FALSE(tmp_exists(i));
    CHECK(status(i).restarts == 0); // in step again
  }
  CHECK_FALSE(root_exits.down());
  CHECK(files_supervisor() == files_sup); // never restarted by the root
  CHECK_FALSE(logs.contains("restart limit"));
}

TEST_CASE_FIXTURE(files_fixture,
                  "a fault that never clears on one file is restarted "
                  "without end and reported with its file, reason, duration "
                  "and restart count, while the other files stay in step") {
  port->rename_errors_for["/srv/f2"] = EISDIR;
  truth->publish({{"users/alice", user("Pw-2")}});
  run();
  advance_by(305s);
  CHECK_FALSE(root_exits.down());
  auto st = status(1);
  CHECK(st.path == "/srv/f2");
  CHECK(st.restarts == 30);
  CHECK(st.failing_for == caf::timespan{305s});
  CHECK(st.last_give_up
        == "gave up writing /srv/f2 after 10s of failures: last rename "
           "/srv/f2.tmp -> /srv/f2 failed: Is a directory");
  CHECK(logs.contains("(failing for 300s, give-up 30 since the file was "
                      "last written)"));
  CHECK(file(1) == "alice:Pw-1\n");
  for (size_t i : {0, 2, 3}) {
    CAPTURE(i);
    CHECK(file(i) == "alice:Pw-2\n");
    CHECK(status(i).restarts == 0);
  }
}

TEST_CASE_FIXTURE(files_fixture,
                  "a write fault shared by every file that never clears "
                  "leaves the node running and every file reporting it") {
  port->rename_error = EROFS;
  truth->publish({{"users/alice", user("Pw-2")}});
  run();
  advance_by(2min);
  CHECK_FALSE(root_exits.down());
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    auto st = status(i);
    CHECK(st.restarts == 12);
    CHECK(st.last_give_up.find("Read-only file system") != std::string::npos);
  }
  port->rename_error = 0;
  advance(100ms);
  for (size_t i = 0; i < 4; ++i)
    CHECK(file(i) == "alice:Pw-2\n");
}

TEST_CASE_FIXTURE(files_fixture,
                  "a supervisor stop while renames keep failing leaves no "
                  "temp file behind") {
  port->rename_error = EISDIR;
  truth->publish({{"users/alice", user("Pw-2")}});
  run();
  for (size_t i = 0; i < 4; ++i)
    REQUIRE(tmp_exists(i));
  auto stopped = ask<caf::ok_atom>(sys, files_supervisor(),
                                   sup::terminate_child_atom::value,
                                   writer_child_id(0));
  run();
  REQUIRE(stopped->value);
  CHECK_FALSE(tmp_exists(0));
  CHECK(tmp_exists(1)); // the others keep trying
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  run();
  CHECK(root_exits.down());
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK_FALSE(tmp_exists(i));
    CHECK(file(i) == "alice:Pw-1\n"); // the failing renames never landed
  }
}

namespace {

/// A node on one etcd endpoint, `url`, keeping one auth file.
node_config etcd_node(const std::string& url) {
  node_config cfg;
  cfg.etcd = etcd_source_config{};
  cfg.etcd->endpoints = {url};
  file_config file;
  file.path = "/srv/auth";
  file.module = find_module("memcached_passwords");
  cfg.files.push_back(file);
  return cfg;
}

} // namespace

TEST_CASE("load_node_source: an etcd endpoint that refuses connections may "
          "answer later, and the error names it") {
  auto url = "http://127.0.0.1:" + std::to_string(free_loopback_port());
  auto cfg = etcd_node(url);
  etcd::client_options opts;
  opts.endpoints = cfg.etcd->endpoints;
  opts.retry_for = 0ms; // one round: the endpoint refuses at once
  etcd::client c{opts};
  auto read = load_node_source(cfg, &c);
  CHECK(read.unreachable);
  CHECK_FALSE(read.loaded.ok());
  REQUIRE(read.loaded.errors.size() == 1);
  CHECK(read.loaded.errors[0].to_string().find(url) != std::string::npos);
}

TEST_CASE("load_node_source: an etcd TLS file that cannot be read is bad "
          "configuration, not a wait") {
  auto cfg = etcd_node("https://127.0.0.1:1");
  cfg.etcd->tls = etcd::tls_files{"/nonexistent/ca.pem", "", ""};
  auto read = load_node_source(cfg);
  CHECK_FALSE(read.unreachable);
  REQUIRE(read.loaded.errors.size() == 1);
  CHECK(read.loaded.errors[0].to_string().find(
          "etcd TLS CA file /nonexistent/ca.pem: No such file or directory")
        != std::string::npos);
}

TEST_CASE("load_node_source: a file source that does not exist is bad "
          "configuration, not a wait") {
  node_config cfg;
  cfg.source = "/nonexistent/source.yaml";
  auto read = load_node_source(cfg);
  CHECK_FALSE(read.unreachable);
  CHECK_FALSE(read.loaded.ok());
  CHECK_FALSE(read.loaded.errors.empty());
}
