// The refresher under the test_coordinator: per-file runs, coalescing,
// backoff, syncs, stops, the verify loop with a scripted check; and with a
// writer, that a slow refresh holds back no rename.
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
  /// Checks asked of any of these runners.
  std::shared_ptr<size_t> verifies = std::make_shared<size_t>(0);

  /// For refresher_spec::spawn_runner.
  auto spawner() {
    return [runs = runs, handles = handles, verifies = verifies](
             caf::actor_system& sys, const std::string& path, refresh_job) {
      auto runner = sys.spawn(
        [runs, path,
         verifies](manual_runner::stateful_pointer<manual_runner_state> self)
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
            // These files have no consumer check: never asked.
            [=](verify_atom, const std::string&, bool) {
              ++*verifies;
              return caf::make_result(uint8_t{0}, std::string{});
            },
            [=](diagnose_atom, const std::string&) { return std::string{}; },
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

refresh_job no_check(refresh_action action) {
  return refresh_job{std::move(action), nullptr, {}};
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
      spec.jobs[path] = no_check(no_action());
    spec.spawn_runner = runners.spawner();
    refresher = spawn_refresher(sys, std::move(spec));
    run();
  }

  uint64_t versions = 0;

  void request(const std::string& path) {
    caf::anon_send(refresher, refresh_atom::value, path, ++versions);
  }

  std::shared_ptr<reply<file_sync>> sync(const std::string& path) {
    return ask<file_sync>(sys, refresher, sync_atom::value, path, versions);
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
    spec.jobs["/a"] = no_check([runs = runs, failure = failure] {
      ++*runs;
      return failure->empty() ? result<void>{} : result<void>{fail(*failure)};
    });
    spec.spawn_runner = [](caf::actor_system& sys, const std::string&,
                           refresh_job job) {
      return spawn_refresh_runner(sys, std::move(job), false);
    };
    refresher = spawn_refresher(sys, std::move(spec));
    run();
  }
};

template <class T>
std::string error_text(const std::shared_ptr<reply<T>>& r) {
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
  caf::anon_send(refresher, refresh_atom::value, std::string{"/a"},
                 uint64_t{1});
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
    caf::anon_send(refresher, refresh_atom::value, std::string{"/a"},
                   uint64_t{1});
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
  auto synced = ask<file_sync>(sys, refresher, sync_atom::value,
                               std::string{"/a"}, uint64_t{1});
  run();
  REQUIRE(synced->value);
  CHECK(synced->value->basis == sync_basis::applied);
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
  spec.jobs["/a"] = no_check(no_action());
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
    rs.jobs[path] = no_check(no_action());
    rs.spawn_runner = runners.spawner();
    refresher = spawn_refresher(sys, std::move(rs));
    auto ws = spec();
    ws.refresh = [r = refresher, p = path](uint64_t version) {
      caf::anon_send(r, refresh_atom::value, p, version);
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

namespace {

/// What a fake consumer check answers, and how often it was asked.
struct check_script {
  /// Answers in order; once used up, `then` for ever.
  std::deque<check_outcome> outcomes;
  check_outcome then{check_verdict::disagrees, "still refuses user carol"};
  std::string diagnosis;
  size_t starts = 0;
  size_t agains = 0;
  size_t diagnoses = 0;

  size_t checks() const {
    return starts + agains;
  }

  check_outcome next() {
    if (outcomes.empty())
      return then;
    auto out = outcomes.front();
    outcomes.pop_front();
    return out;
  }
};

struct fake_check : consumer_check {
  std::shared_ptr<check_script> script;

  explicit fake_check(std::shared_ptr<check_script> s) : script(std::move(s)) {
  }
  check_outcome start(const std::string&) override {
    ++script->starts;
    return script->next();
  }
  check_outcome again() override {
    ++script->agains;
    return script->next();
  }
  std::string diagnose(const std::string&) override {
    ++script->diagnoses;
    return script->diagnosis;
  }
};

const check_outcome confirmed{check_verdict::confirmed, {}};

/// One file, /a, whose refresh action counts its runs and whose check
/// follows a script; runners scheduled (not detached), so that the action
/// and the check run within the test's steps.
struct verify_fixture : coordinator_fixture {
  std::shared_ptr<size_t> runs = std::make_shared<size_t>(0);
  /// What the refresh action fails with (empty: it succeeds).
  std::shared_ptr<std::string> failure = std::make_shared<std::string>();
  std::shared_ptr<check_script> script = std::make_shared<check_script>();
  refresher_actor refresher;
  log_capture logs;

  verify_fixture() {
    refresher = spawn_refresher(sys, make_spec());
    run();
  }

  refresher_spec make_spec() {
    refresher_spec spec;
    refresh_job job;
    job.action = [runs = runs, failure = failure] {
      ++*runs;
      return failure->empty() ? result<void>{} : result<void>{fail(*failure)};
    };
    job.check = std::make_shared<fake_check>(script);
    job.verify.interval = 50ms;
    job.verify.timeout = 5s;
    job.verify.resignal_after = 1500ms;
    spec.jobs["/a"] = job;
    spec.spawn_runner = [](caf::actor_system& sys, const std::string&,
                           refresh_job job) {
      return spawn_refresh_runner(sys, std::move(job), false);
    };
    return spec;
  }

  ~verify_fixture() {
    caf::anon_send_exit(refresher, caf::exit_reason::user_shutdown);
    run();
  }

  void renamed(uint64_t version) {
    caf::anon_send(refresher, refresh_atom::value, std::string{"/a"}, version);
  }

  std::shared_ptr<reply<file_sync>> sync(uint64_t version) {
    return ask<file_sync>(sys, refresher, sync_atom::value, std::string{"/a"},
                          version);
  }

  refresh_status status() {
    auto st = ask<std::vector<refresh_status>>(sys, refresher,
                                               status_atom::value);
    run();
    REQUIRE(st->value);
    REQUIRE(st->value->size() == 1);
    return st->value->front();
  }
};

} // namespace

TEST_CASE_FIXTURE(verify_fixture,
                  "verify: the check runs again every 50 ms until the "
                  "consumer agrees, then the held sync is answered confirmed "
                  "and no check runs after") {
  script->outcomes = {{check_verdict::disagrees, "still refuses user carol"},
                      {check_verdict::unreachable, "connect: refused"},
                      {check_verdict::disagrees, "still refuses user carol"},
                      confirmed};
  renamed(5);
  auto held = sync(5);
  run();
  CHECK(*runs == 1);
  CHECK(script->starts == 1);
  CHECK(script->agains == 0);
  auto st = status();
  CHECK(st.verifies);
  CHECK(st.verify_state == "verifying");
  CHECK(st.verify_detail == "still refuses user carol");
  CHECK(st.confirmed_version == 0);
  CHECK(st.verifying_for == caf::timespan{0});
  CHECK_FALSE(held->answered());
  for (size_t step = 1; step <= 3; ++step) {
    advance(49ms);
    CHECK(script->checks() == step); // not before the interval
    advance(1ms);
    CHECK(script->checks() == step + 1); // exactly one per interval
  }
  REQUIRE(held->value);
  CHECK(held->value->basis == sync_basis::confirmed);
  CHECK(held->value->version == 5);
  st = status();
  CHECK(st.verify_state == "confirmed");
  CHECK(st.confirmed_version == 5);
  CHECK(st.verifying_for < caf::timespan{0});
  advance(10s);
  CHECK(script->checks() == 4);
  CHECK(*runs == 1); // agreed before the re-signal was due
  CHECK(script->diagnoses == 0);
}

TEST_CASE_FIXTURE(verify_fixture,
                  "verify: no agreement re-signals exactly once at 1.5 s, and "
                  "at the timeout the version fails with one diagnosis, "
                  "answering the held sync with verify_failed") {
  script->diagnosis = "memcached (pid 7, uid 104) cannot read /a";
  renamed(5);
  auto held = sync(5);
  run();
  advance(1450ms);
  CHECK(*runs == 1);
  advance(50ms);
  CHECK(*runs == 2); // the one re-signal
  INFO(logs.lines.size());
  CHECK(logs.contains("/a: version 5 not enforced after 1500ms; refreshing "
                      "once more"));
  advance(3450ms);
  CHECK(*runs == 2);
  CHECK_FALSE(held->answered());
  CHECK(script->diagnoses == 0);
  advance(50ms); // 5 s since the refresh
  CHECK(script->diagnoses == 1);
  CHECK(error_text(held)
        == "/a: version 5 not confirmed: still refuses user carol; memcached "
           "(pid 7, uid 104) cannot read /a");
  auto st = status();
  CHECK(st.verify_state == "failed");
  CHECK(st.confirmed_version == 0);
  auto checks = script->checks();
  advance(1min);
  CHECK(script->checks() == checks); // given up: no more checks
  CHECK(*runs == 2); // never a third signal
  CHECK(logs.count("not confirmed after 5s") == 1);
  // A sync now answers at once with the failure; a new rename starts over.
  auto again = sync(5);
  run();
  CHECK(error_text(again).rfind("/a: version 5 not confirmed", 0) == 0);
  script->outcomes = {confirmed};
  renamed(6);
  auto next = sync(6);
  run();
  REQUIRE(next->value);
  CHECK(next->value->basis == sync_basis::confirmed);
  CHECK(status().confirmed_version == 6);
}

TEST_CASE_FIXTURE(verify_fixture,
                  "verify: a newer rename during a check supersedes it: the "
                  "old check's tick is dropped and the old version is never "
                  "reported confirmed on its own") {
  renamed(5);
  auto held5 = sync(5);
  run();
  advance(50ms);
  advance(50ms);
  CHECK(script->checks() == 3);
  CHECK(script->starts == 1);
  script->outcomes = {{check_verdict::disagrees, "still refuses user dave"},
                      confirmed};
  renamed(6);
  run();
  CHECK(*runs == 2);
  CHECK(script->starts == 2); // planned afresh for version 6
  CHECK(status().confirmed_version == 0);
  // The superseded check's tick (due at 150 ms) must not add a check.
  advance(49ms);
  CHECK(script->checks() == 4);
  advance(1ms);
  CHECK(script->checks() == 5);
  REQUIRE(held5->value);
  CHECK(held5->value->basis == sync_basis::confirmed);
  auto st = status();
  CHECK(st.version == 6);
  CHECK(st.confirmed_version == 6);
}

TEST_CASE_FIXTURE(verify_fixture,
                  "verify: an unverifiable version and a version past the "
                  "last rename (roles only) are answered unverifiable, and "
                  "confirmed_version stays") {
  script->outcomes = {confirmed};
  renamed(1);
  run();
  CHECK(status().confirmed_version == 1);
  // Version 3 renamed nothing: the file holds what version 1 wrote.
  auto roles = sync(3);
  run();
  REQUIRE(roles->value);
  CHECK(roles->value->basis == sync_basis::unverifiable);
  CHECK(roles->value->note
        == "version 3 left the file as version 1 wrote it; the consumer was "
           "shown to enforce that");
  CHECK(script->checks() == 1); // nothing ran for it
  script->outcomes = {{check_verdict::unverifiable, "no login differs"}};
  renamed(4);
  auto same = sync(4);
  run();
  REQUIRE(same->value);
  CHECK(same->value->basis == sync_basis::unverifiable);
  CHECK(same->value->note == "no login differs");
  auto st = status();
  CHECK(st.verify_state == "unverifiable");
  CHECK(st.confirmed_version == 1);
}

TEST_CASE_FIXTURE(verify_fixture,
                  "verify: a refresher stopped during a check answers the "
                  "held sync with refresher_stopped") {
  renamed(2);
  auto held = sync(2);
  run();
  advance(200ms);
  CHECK_FALSE(held->answered());
  caf::anon_send_exit(refresher, caf::exit_reason::kill);
  run();
  CHECK(error_text(held) == "refresher stopped before /a was refreshed");
}

TEST_CASE_FIXTURE(verify_fixture,
                  "verify: a check answer that arrives after a newer rename "
                  "is dropped, even one that agrees") {
  renamed(5);
  auto held5 = sync(5);
  run();
  script->outcomes = {confirmed}; // what the tick's check of 5 will say
  sched.advance_time(50ms); // the tick is due: its check is asked,
  renamed(6); // with the rename of 6 right behind it
  run();
  CHECK(script->agains == 1); // the check of 5 ran and agreed
  CHECK(*runs == 2);
  CHECK(script->starts == 2); // and 6 is checked afresh
  CHECK(status().verify_state == "verifying");
  CHECK(status().confirmed_version == 0); // 5's agreement counted nothing
  CHECK_FALSE(held5->answered());
  script->outcomes = {confirmed};
  advance(50ms);
  REQUIRE(held5->value);
  CHECK(held5->value->basis == sync_basis::confirmed); // 6 covers 5
  CHECK(status().confirmed_version == 6);
}

TEST_CASE_FIXTURE(verify_fixture,
                  "verify: a sync for a version past the last rename waits "
                  "for that rename's verdict, then is answered unverifiable "
                  "when it was confirmed and verify_failed when it failed") {
  renamed(1);
  auto roles = sync(2); // roles only: the file as version 1 wrote it
  run();
  CHECK_FALSE(roles->answered());
  script->outcomes = {confirmed};
  advance(50ms);
  REQUIRE(roles->value);
  CHECK(roles->value->basis == sync_basis::unverifiable);
  CHECK(roles->value->version == 2);
  CHECK(roles->value->note
        == "version 2 left the file as version 1 wrote it; the consumer was "
           "shown to enforce that");
  CHECK(script->checks() == 2); // nothing ran for version 2
  renamed(3);
  run();
  advance(5s); // one step: the next check is past the timeout, failed
  REQUIRE(status().verify_state == "failed");
  auto checks = script->checks();
  auto after = sync(4);
  run();
  CHECK(error_text(after)
        == "/a: version 3 not confirmed: still refuses user carol");
  CHECK(script->checks() == checks); // answered from the verdict: no check
  CHECK(*runs == 2); // for 1 and 3
}

TEST_CASE_FIXTURE(verify_fixture,
                  "verify: a failed re-signal answers the held sync with "
                  "refresh_failed, is retried after the backoff, and the "
                  "check then starts afresh") {
  renamed(5);
  auto held = sync(5);
  run();
  *failure = "pidfile /run/memcached.pid: No such file or directory";
  advance(1500ms);
  CHECK(*runs == 2); // the re-signal, failed
  CHECK(error_text(held)
        == "refresh of /a failed: pidfile "
           "/run/memcached.pid: No such file or directory");
  CHECK(status().verifying_for < caf::timespan{0}); // none in the backoff
  auto checks = script->checks();
  advance(999ms);
  CHECK(script->checks() == checks);
  CHECK(*runs == 2);
  failure->clear();
  script->outcomes = {confirmed};
  advance(1ms);
  CHECK(*runs == 3);
  CHECK(script->starts == 2);
  CHECK(status().confirmed_version == 5);
}

TEST_CASE_FIXTURE(verify_fixture,
                  "verify: after a restart, the check of the start's refresh "
                  "covers what the file holds: a held sync for any version "
                  "is answered confirmed") {
  caf::anon_send_exit(refresher, caf::exit_reason::kill);
  run();
  auto spec = make_spec();
  spec.refresh_on_start = true;
  refresher = spawn_refresher(sys, std::move(spec));
  run();
  CHECK(*runs == 1);
  CHECK(status().version == 0); // no rename heard by this incarnation
  CHECK(status().verify_state == "verifying");
  auto held = sync(7);
  run();
  CHECK_FALSE(held->answered());
  script->outcomes = {confirmed};
  advance(50ms);
  REQUIRE(held->value);
  CHECK(held->value->basis == sync_basis::confirmed);
  CHECK(held->value->version == 7);
  CHECK(status().confirmed_version == 7);
  CHECK(*runs == 1);
}

TEST_CASE_FIXTURE(refresher_fixture,
                  "a file without a check: status shows no check, and a sync "
                  "is answered applied for its version once the owed "
                  "refreshes went through, with no check asked") {
  start({"/a"});
  request("/a");
  request("/a"); // versions 1 and 2
  run();
  auto held = sync("/a"); // version 2
  run();
  runners.finish("/a");
  run();
  CHECK_FALSE(held->answered()); // version 2's refresh is still owed
  runners.finish("/a");
  run();
  REQUIRE(held->value);
  CHECK(held->value->basis == sync_basis::applied);
  CHECK(held->value->version == 2);
  auto st = status("/a");
  CHECK(st.version == 2);
  CHECK_FALSE(st.verifies);
  CHECK(st.verify_state == "none");
  CHECK(st.confirmed_version == 0);
  CHECK(*runners.verifies == 0);
}
