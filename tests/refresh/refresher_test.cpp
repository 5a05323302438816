// The refresher under the test_coordinator: per-file runs, coalescing,
// backoff, syncs, stops; and with a writer, that a slow refresh holds back
// no rename.
#include <doctest/doctest.h>

#include <deque>

#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/writer_fixture.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/refresh/refresher.hpp"
#include "memcached_cfg/supervision/supervisor.hpp"
#include "support/actor_probes.hpp"
#include "support/coordinator_fixture.hpp"
#include "support/log_capture.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

/// finish(failure): the oldest held run ends with `failure` ("" = success).
using finish_atom = caf::atom_constant<caf::atom("finish")>;

using manual_runner
  = refresh_runner::extend<caf::reacts_to<finish_atom, std::string>>;

struct manual_runner_state {
  std::deque<caf::typed_response_promise<std::string>> held;
};

/// Runners whose runs end when the test says so: a refresh command that
/// takes as long as the test wants, on simulated time.
struct manual_runners {
  std::shared_ptr<std::map<std::string, size_t>> runs
    = std::make_shared<std::map<std::string, size_t>>();
  std::shared_ptr<std::map<std::string, manual_runner>> handles
    = std::make_shared<std::map<std::string, manual_runner>>();

  /// For refresher_spec::spawn_runner.
  auto spawner() {
    return [runs = runs, handles = handles](
             caf::actor_system& sys, const std::string& path, refresh_action) {
      auto runner = sys.spawn(
        [runs, path](manual_runner::stateful_pointer<manual_runner_state> self)
          -> manual_runner::behavior_type {
          return {
            [=](run_atom) -> caf::result<std::string> {
              ++(*runs)[path];
              auto promise = self->make_response_promise<std::string>();
              self->state.held.push_back(promise);
              return promise;
            },
            [=](finish_atom, const std::string& failure) {
              auto promise = self->state.held.front();
              self->state.held.pop_front();
              promise.deliver(failure);
            },
          };
        });
      (*handles)[path] = runner;
      return refresh_runner{runner};
    };
  }

  size_t count(const std::string& path) const {
    auto i = runs->find(path);
    return i == runs->end() ? 0 : i->second;
  }

  void finish(const std::string& path, const std::string& failure = {}) {
    caf::anon_send(handles->at(path), finish_atom::value, failure);
  }
};

refresh_action no_action() {
  return [] { return result<void>{}; };
}

struct refresher_fixture : coordinator_fixture {
  manual_runners runners;
  refresher_actor refresher;
  log_capture logs;

  ~refresher_fixture() {
    // A held run keeps its runner and the refresher alive, each holding
    // the other: stop them, as the node's supervisor would.
    caf::anon_send_exit(refresher, caf::exit_reason::user_shutdown);
    run();
  }

  void start(std::vector<std::string> paths) {
    refresher_spec spec;
    for (auto& path : paths)
      spec.actions[path] = no_action();
    spec.spawn_runner = runners.spawner();
    refresher = spawn_refresher(sys, std::move(spec));
    run();
  }

  void request(const std::string& path) {
    caf::anon_send(refresher, refresh_atom::value, path);
  }

  std::shared_ptr<reply<caf::ok_atom>> sync(const std::string& path) {
    return ask<caf::ok_atom>(sys, refresher, sync_atom::value, path);
  }

  refresh_status status(const std::string& path) {
    auto st = ask<std::vector<refresh_status>>(sys, refresher,
                                               status_atom::value);
    run();
    REQUIRE(st->value);
    for (auto& x : *st->value)
      if (x.path == path)
        return x;
    FAIL("no status for " << path);
    return {};
  }
};

/// A refresher whose runs end at once with `*failure` (empty = success).
struct failing_refresher_fixture : coordinator_fixture {
  std::shared_ptr<size_t> runs = std::make_shared<size_t>(0);
  std::shared_ptr<std::string> failure = std::make_shared<std::string>();
  refresher_actor refresher;
  log_capture logs;

  failing_refresher_fixture() {
    refresher_spec spec;
    spec.actions["/a"] = [runs = runs, failure = failure] {
      ++*runs;
      return failure->empty() ? result<void>{} : result<void>{fail(*failure)};
    };
    spec.spawn_runner = [](caf::actor_system& sys, const std::string&,
                           refresh_action action) {
      return spawn_refresh_runner(sys, std::move(action), false);
    };
    refresher = spawn_refresher(sys, std::move(spec));
    run();
  }
};

std::string error_text(const std::shared_ptr<reply<caf::ok_atom>>& r) {
  REQUIRE(r->error);
  return describe(*r->error);
}

} // namespace

TEST_CASE_FIXTURE(refresher_fixture,
                  "requests while a file's refresh runs queue exactly one "
                  "more run after it") {
  start({"/a"});
  request("/a");
  run();
  CHECK(runners.count("/a") == 1);
  request("/a");
  request("/a");
  request("/a");
  request("/unknown"); // a file without a refresh action
  run();
  CHECK(runners.count("/a") == 1); // never two at once
  auto st = status("/a");
  CHECK(st.running);
  CHECK(st.pending);
  runners.finish("/a");
  run();
  CHECK(runners.count("/a") == 2); // the three requests: one more run
  runners.finish("/a");
  advance(1min);
  CHECK(runners.count("/a") == 2);
  st = status("/a");
  CHECK_FALSE(st.pending);
  CHECK(st.refreshes == 2);
  CHECK(st.failures == 0);
  CHECK(st.next_retry_in < caf::timespan{0});
}

TEST_CASE_FIXTURE(refresher_fixture,
                  "one file's slow or failing refresh never delays another "
                  "file's sync") {
  start({"/a", "/b"});
  request("/a");
  request("/b");
  run();
  auto sync_a = sync("/a");
  auto sync_b = sync("/b");
  auto sync_none = sync("/none"); // no refresh action: nothing to wait for
  run();
  CHECK(sync_none->value);
  CHECK_FALSE(sync_a->answered());
  CHECK_FALSE(sync_b->answered());
  runners.finish("/b");
  run();
  CHECK(sync_b->value); // while /a's run goes on
  CHECK_FALSE(sync_a->answered());
  runners.finish("/a", "command `reload-it` exited with status 1");
  run();
  // A failing refresh answers with its error, never leaves a sync waiting.
  CHECK(error_text(sync_a)
        == "refresh of /a failed: command `reload-it` exited with status 1");
  // A sync while /a waits for its retry tries it now and answers with how
  // that went, not after the backoff.
  auto again_a = sync("/a");
  auto again_b = sync("/b");
  run();
  CHECK(runners.count("/a") == 2);
  CHECK(again_b->value);
  CHECK_FALSE(again_a->answered());
  runners.finish("/a", "command `reload-it` exited with status 2");
  run();
  CHECK(error_text(again_a)
        == "refresh of /a failed: command `reload-it` exited with status 2");
  CHECK(status("/a").failures == 2);
  request("/b");
  run();
  CHECK(runners.count("/b") == 2); // /a's failures hold /b back in nothing
  runners.finish("/b");
  auto last_a = sync("/a");
  run();
  runners.finish("/a");
  run();
  CHECK(last_a->value);
  CHECK(status("/a").failures == 0);
}

TEST_CASE_FIXTURE(failing_refresher_fixture,
                  "a failed refresh is retried after 1 s, doubling to 30 s, "
                  "and status shows the failures, the error and the next "
                  "retry") {
  *failure = "pidfile /run/memcached.pid: No such file or directory";
  caf::anon_send(refresher, refresh_atom::value, std::string{"/a"});
  run();
  CHECK(*runs == 1);
  size_t expected = 1;
  for (auto wait : {1s, 2s, 4s, 8s, 16s, 30s, 30s}) {
    CAPTURE(wait.count());
    auto st = ask<std::vector<refresh_status>>(sys, refresher,
                                               status_atom::value);
    run();
    REQUIRE(st->value);
    REQUIRE(st->value->size() == 1);
    auto& x = st->value->front();
    CHECK(x.failures == expected);
    CHECK(x.pending);
    CHECK_FALSE(x.running);
    CHECK(x.last_error == *failure);
    CHECK(x.next_retry_in == caf::timespan{wait});
    // A rename meanwhile waits for the retry rather than run early.
    caf::anon_send(refresher, refresh_atom::value, std::string{"/a"});
    advance(wait - 1ms);
    CHECK(*runs == expected);
    advance(1ms);
    CHECK(*runs == ++expected);
  }
  CHECK(logs.count("refresh of /a failed") == 1); // not one line per retry
  failure->clear();
  advance(30s);
  CHECK(*runs == expected + 1);
  CHECK(logs.contains("refreshed /a after " + std::to_string(expected)
                      + " failed attempts"));
  advance(10min);
  CHECK(*runs == expected + 1); // no more once it went through
  auto synced = ask<caf::ok_atom>(sys, refresher, sync_atom::value,
                                  std::string{"/a"});
  run();
  CHECK(synced->value);
}

TEST_CASE_FIXTURE(refresher_fixture,
                  "held syncs are answered when the refresher is stopped or "
                  "killed, and its runners stop with it") {
  for (auto reason :
       {caf::exit_reason::user_shutdown, caf::exit_reason::kill}) {
    CAPTURE(caf::to_string(reason));
    start({"/a"});
    request("/a");
    run();
    auto held = sync("/a");
    run();
    CHECK_FALSE(held->answered());
    auto runner = watch(sys, runners.handles->at("/a"));
    caf::anon_send_exit(refresher, reason);
    run();
    CHECK(error_text(held) == "refresher stopped before /a was refreshed");
    CHECK(runner.down());
  }
}

TEST_CASE_FIXTURE(refresher_fixture,
                  "a refresher restarted by its supervisor answers the held "
                  "syncs of its dead incarnation and refreshes every file "
                  "once") {
  refresher_spec spec;
  spec.actions["/a"] = no_action();
  spec.spawn_runner = runners.spawner();
  spec.refresh_on_start = true;
  sup::supervisor_flags flags;
  flags.name = "root";
  auto root = sup::spawn_supervisor(
    sys, flags,
    {sup::worker_child(caf::atom("refresher"),
                       sup::make_start([spec](caf::actor_system& sys) {
                         return spawn_refresher(sys, spec);
                       }))});
  run();
  refresher = sys.registry().get<refresher_actor>(caf::atom("refresher"));
  REQUIRE(refresher);
  CHECK(runners.count("/a") == 1); // refresh_on_start
  auto held = sync("/a");
  run();
  CHECK_FALSE(held->answered());
  caf::anon_send_exit(refresher, caf::exit_reason::kill);
  run();
  CHECK(error_text(held) == "refresher stopped before /a was refreshed");
  auto second = sys.registry().get<refresher_actor>(caf::atom("refresher"));
  REQUIRE(second);
  CHECK(second != refresher);
  CHECK(runners.count("/a") == 2); // the new incarnation refreshes at start
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  run();
}

namespace {

struct slow_refresh_fixture : writer_fixture {
  manual_runners runners;
  refresher_actor refresher;
  log_capture logs;

  ~slow_refresh_fixture() {
    caf::anon_send_exit(refresher, caf::exit_reason::user_shutdown);
    run();
  }

  void start_node() {
    refresher_spec rs;
    rs.actions[path] = no_action();
    rs.spawn_runner = runners.spawner();
    refresher = spawn_refresher(sys, std::move(rs));
    auto ws = spec();
    ws.refresh = [r = refresher, p = path] {
      caf::anon_send(r, refresh_atom::value, p);
    };
    writer = spawn_memcached_cfg(sys, std::move(ws));
    exits = watch(sys, writer);
    run();
  }
};

} // namespace

TEST_CASE_FIXTURE(slow_refresh_fixture,
                  "a refresh slower than the writer's deadline holds back no "
                  "rename: every edit lands at once, no writer gives up, and "
                  "one more refresh runs after it") {
  start_node();
  REQUIRE(renamed().size() == 1);
  REQUIRE(runners.count(path) == 1); // the slow refresh of the first write
  auto started = sched.clock().current_time;
  for (int edit = 1; edit <= 5; ++edit) {
    advance(3s); // up to 15 s into a refresh, past the 10 s deadline
    change("cfg/a", edit);
    run(); // no simulated time passes before the file holds the edit
    CHECK(file() == expected_file());
    CHECK(renamed().size() == size_t(edit) + 1);
  }
  CHECK(elapsed_since(started) == 15s);
  CHECK_FALSE(exits.down());
  auto st = status();
  CHECK(st.failed_attempts == 0);
  CHECK(st.phase == writer_phase::idle);
  CHECK(runners.count(path) == 1);
  runners.finish(path);
  run();
  CHECK(runners.count(path) == 2); // five renames during it: one more run
  runners.finish(path);
  advance(1min);
  CHECK(runners.count(path) == 2);
  CHECK_FALSE(exits.down());
  CHECK_FALSE(logs.contains("gave up"));
}
