// The mission's scenario end to end: a memcached_cfg writer whose renames
// keep failing exits at its deadline, its supervisor restarts it, the new
// incarnation rewrites the file from fresh state, and once the fault clears
// the file holds the latest state.
#include <doctest/doctest.h>

#include <cerrno>

#include <caf/all.hpp>

#include "actors/fake_file_port.hpp"
#include "actors/kv_module.hpp"
#include "memcached_cfg/actors/memcached_cfg.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/source/source_of_truth.hpp"
#include "memcached_cfg/supervision/errors.hpp"
#include "memcached_cfg/supervision/supervisor.hpp"
#include "supervision_fixture.hpp"
#include "support/actor_probes.hpp"
#include "support/coordinator_fixture.hpp"
#include "support/log_capture.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

constexpr auto writer_id = caf::atom("auth");

struct scenario_fixture : coordinator_fixture {
  std::shared_ptr<fake_file_port> files = std::make_shared<fake_file_port>();
  std::shared_ptr<source_of_truth> truth = source_of_truth::make(
    {{"cfg/a", config_value{int64_t{1}}}});
  const std::string path = "/etc/mcfg/auth";
  log_capture logs;
  supervisor_lines_in_log routed;
  sup::supervisor_actor root;

  sup::child_spec writer_child() {
    writer_spec spec;
    spec.settings.path = path;
    spec.files = files;
    spec.make_module = [] { return std::make_unique<kv_module>(); };
    spec.subscribe = [t = truth](const memcached_cfg_actor& self) {
      t->subscribe(self);
    };
    spec.read_snapshot = [t = truth] { return t->read(); };
    return sup::worker_child(writer_id,
                             sup::make_start([spec](caf::actor_system& sys) {
                               return spawn_memcached_cfg(sys, spec);
                             }));
  }

  memcached_cfg_actor current_writer() {
    return sys.registry().get<memcached_cfg_actor>(writer_id);
  }

  ~scenario_fixture() {
    caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    run();
  }
};

} // namespace

TEST_CASE_FIXTURE(scenario_fixture,
                  "a writer that gives up is restarted and, once the fault "
                  "clears, the file holds the latest state") {
  sup::supervisor_flags flags;
  flags.name = "root";
  root = sup::spawn_supervisor(sys, flags, {writer_child()});
  run();
  auto first = current_writer();
  REQUIRE(first);
  REQUIRE(files->files[path] == "cfg/a=1\n");

  // The target becomes unrenamable, and the source moves on.
  files->rename_error = EISDIR;
  truth->publish({{"cfg/a", config_value{int64_t{2}}}});
  run();
  auto held = ask<caf::ok_atom>(sys, first, sync_atom::value);
  run();
  for (int i = 0; i < 99; ++i)
    advance(100ms); // 9.9 s: still trying
  CHECK(current_writer() == first);
  CHECK_FALSE(held->answered());
  advance(100ms); // 10 s: the first incarnation gives up

  // Its held sync got the reason; the supervisor started a new incarnation,
  // which read fresh state and tried at once.
  REQUIRE(held->error.has_value());
  CHECK(describe(*held->error).find("gave up writing /etc/mcfg/auth")
        != std::string::npos);
  auto second = current_writer();
  REQUIRE(second);
  CHECK(second != first);
  CHECK(logs.count("child 'auth' exited: gave up writing /etc/mcfg/auth after "
                   "10s of failures: last rename /etc/mcfg/auth.tmp -> "
                   "/etc/mcfg/auth failed: Is a directory; restarting it "
                   "[restarts in the last 10s: 1, limit 3]")
        == 1);
  CHECK(logs.count("restarted child 'auth'") == 1);
  CHECK(files->files[path + ".tmp"] == "cfg/a=2\n");
  CHECK(files->files[path] == "cfg/a=1\n"); // still failing

  // A sync sent to the dead incarnation is answered with an error.
  auto late = ask<caf::ok_atom>(sys, first, sync_atom::value);
  run();
  REQUIRE(late->error.has_value());
  CHECK_FALSE(late->value.has_value());

  // While the fault lasts the source changes again; the new incarnation
  // hears of it through its own subscription.
  truth->publish({{"cfg/a", config_value{int64_t{3}}}});
  run();
  advance(2s);
  files->rename_error = 0;
  advance(100ms);
  CHECK(files->files[path] == "cfg/a=3\n");
  CHECK(current_writer() == second);
  auto synced = ask<caf::ok_atom>(sys, second, sync_atom::value);
  run();
  CHECK(synced->value.has_value());
  for (auto& content : files->renamed[path])
    CHECK(content != "cfg/a=2\n"); // stale content never landed
  // The supervisor still runs and counts one restart.
  auto counts = ask<sup::child_counts>(sys, root,
                                       sup::count_children_atom::value);
  run();
  REQUIRE(counts->value);
  CHECK(counts->value->active == 1);
}

TEST_CASE_FIXTURE(scenario_fixture,
                  "a fault that outlasts the restart budget makes the "
                  "supervisor give up, naming the writer") {
  sup::supervisor_flags flags;
  flags.name = "root";
  flags.intensity = 3;
  flags.period = 60s;
  root = sup::spawn_supervisor(sys, flags, {writer_child()});
  run();
  auto exits = watch(sys, root);
  run();
  files->rename_error = EISDIR;
  caf::anon_send(current_writer(), reload_atom::value);
  run();
  for (int i = 0; i < 4 * 101 && !exits.down(); ++i)
    advance(100ms);
  REQUIRE(exits.down());
  auto text = sup::describe(**exits.reason, sys);
  CHECK(text.find("root reached its restart limit") != std::string::npos);
  // The writer's reason as the writer's own category renders it.
  CHECK(text.find("after child 'auth' failed: gave up writing /etc/mcfg/auth")
        != std::string::npos);
  CHECK(text.find("Is a directory") != std::string::npos);
  CHECK_FALSE(files->exists(path + ".tmp"));
}
