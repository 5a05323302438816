// The writer's rules (ARCHITECTURE.md §3) under the test_coordinator:
// simulated time, the fake file port, deterministic order.
#include <doctest/doctest.h>

#include <cerrno>
#include <functional>
#include <random>

#include "memcached_cfg/messages/errors.hpp"
#include "support/log_capture.hpp"
#include "writer_fixture.hpp"

using namespace mcfg;
using namespace mcfg::test;

TEST_CASE_FIXTURE(writer_fixture,
                  "a change is written once, refreshed once, and a held sync "
                  "is answered after the write") {
  start();
  REQUIRE(renamed().size() == 1); // the initial write from fresh state
  REQUIRE(*refreshes == 1);
  // The probe's sync reaches the writer after the change and before the
  // write the change causes, so it is held until that write.
  auto renames_when_answered = std::make_shared<size_t>(0);
  sys.spawn([=, w = writer, f = files, p = path](caf::event_based_actor* self) {
    self->request(w, caf::infinite, sync_atom::value).then([=](caf::ok_atom) {
      *renames_when_answered = f->renamed[p].size();
    });
  });
  change("cfg/a", 1);
  run();
  CHECK(*renames_when_answered == 2);
  CHECK(file() == "cfg/a=1\n");
  CHECK(renamed().size() == 2);
  CHECK(files->write_calls == 2);
  CHECK(*refreshes == 2);
  CHECK(files->sync_calls == 2); // directory fsync after each rename
  CHECK_FALSE(files->exists(tmp_path));
  CHECK(pending_retry_ids().empty());
  auto st = status();
  CHECK(st.phase == writer_phase::idle);
  CHECK(st.changes == 1);
  CHECK(st.failed_attempts == 0);
  CHECK(st.last_error.empty());
  CHECK(files->modes[path] == 0600);
}

TEST_CASE_FIXTURE(
  writer_fixture,
  "events outside the module or without effect cause no write") {
  start();
  change("cfg/a", 1);
  run();
  REQUIRE(renamed().size() == 2);
  change("other/key", 5); // filtered out
  change("cfg/a", 1); // unchanged
  run();
  CHECK(renamed().size() == 2);
  CHECK(*refreshes == 2);
  auto st = status();
  CHECK(st.ignored == 2);
  CHECK(st.changes == 1);
  // A sync when nothing is owed is answered at once.
  auto s = sync();
  run();
  CHECK(s->value.has_value());
}

namespace {

/// A hook that runs `f` the first time it is called, and then nothing (as
/// changes that arrive during one real fsync).
std::function<void()> once(std::function<void()> f) {
  auto left = std::make_shared<int>(1);
  return [left, f = std::move(f)] {
    if ((*left)-- > 0)
      f();
  };
}

/// The fixture's next write, and only that one, sees `during` happen while
/// it writes the temp file.
void once_during_next_write(writer_fixture& f, std::function<void()> during) {
  f.files->during_write = once(std::move(during));
}

/// Sends cfg/a=1 with `hook` (a step of the fake port) sending cfg/a=2 the
/// first time it runs; both must land one after the other, no time passing.
void check_written_back_to_back(writer_fixture& f,
                                std::function<void()>& hook) {
  hook = once([&f] { f.change("cfg/a", 2); });
  f.change("cfg/a", 1);
  f.run();
  CHECK(f.renamed() == std::vector<std::string>{"", "cfg/a=1\n", "cfg/a=2\n"});
  CHECK(f.status().phase == writer_phase::idle);
}

} // namespace

TEST_CASE_FIXTURE(writer_fixture,
                  "changes that come while a write runs (a burst) are written "
                  "once none has come for coalesce_quiet, not before, and a "
                  "change after a write with no such change is written at "
                  "once") {
  start();
  once_during_next_write(*this, [this] {
    change("cfg/a", 2);
    change("cfg/a", 3);
  });
  change("cfg/a", 1);
  run();
  // The first change of the burst went out at once.
  REQUIRE(renamed() == std::vector<std::string>{"", "cfg/a=1\n"});
  CHECK(status().phase == writer_phase::pending);
  advance(4ms);
  CHECK(renamed().size() == 2);
  change("cfg/a", 4); // the burst goes on: the quiet period starts again
  run();
  advance(4ms);
  CHECK(renamed().size() == 2);
  CHECK(files->write_calls == 2);
  advance(1ms); // 5 ms after the last change
  CHECK(renamed() == std::vector<std::string>{"", "cfg/a=1\n", "cfg/a=4\n"});
  CHECK(status().phase == writer_phase::idle);
  CHECK(*refreshes == 3);
  // Nothing came while that write ran: the next change is not held.
  change("cfg/a", 5);
  run();
  CHECK(renamed().back() == "cfg/a=5\n");
  CHECK(renamed().size() == 4);
  CHECK(status().changes == 5);
}

TEST_CASE_FIXTURE(writer_fixture,
                  "a change that comes once the new content is in place "
                  "(during the directory fsync) is no burst: it is written "
                  "right after, without waiting") {
  start();
  check_written_back_to_back(*this, files->during_sync);
}

TEST_CASE_FIXTURE(writer_fixture,
                  "a burst's write is held no longer than coalesce_max since "
                  "it became owed, however steady the stream") {
  auto s = spec();
  s.settings.coalesce_max = 20ms;
  start(s);
  once_during_next_write(*this, [this] { change("cfg/a", 1); });
  change("cfg/b", 1);
  run(); // cfg/b=1 written; cfg/a=1 owed since now, in a burst
  REQUIRE(renamed().size() == 2);
  int64_t sent = 1;
  // A change every 3 ms: the stream is never quiet for 5 ms.
  for (int ms = 3; ms <= 18; ms += 3) {
    advance(3ms);
    change("cfg/a", ++sent);
    run();
    CAPTURE(ms);
    CHECK(renamed().size() == 2);
  }
  advance(3ms); // 21 ms: the write held since 0 ms was due at 20 ms
  REQUIRE(renamed().size() == 3);
  CHECK(renamed().back()
        == "cfg/a=" + std::to_string(sent) + "\ncfg/b=1\n"); // the latest
  CHECK(files->write_calls == 3);
  CHECK(status().phase == writer_phase::idle);
}

TEST_CASE_FIXTURE(writer_fixture,
                  "with coalesce_quiet zero the changes a write missed are "
                  "written right after it, without waiting") {
  auto s = spec();
  s.settings.coalesce_quiet = caf::timespan{0};
  start(s);
  check_written_back_to_back(*this, files->during_write);
}

TEST_CASE_FIXTURE(writer_fixture,
                  "a failed rename is retried after retry_interval, not "
                  "before, by the timer whose id is in state") {
  start();
  files->rename_error = EISDIR;
  change("cfg/a", 1);
  run();
  CHECK(files->rename_calls == 2);
  auto st = status();
  CHECK(st.phase == writer_phase::retrying);
  CHECK(st.attempts == 1);
  auto armed = pending_retry_ids();
  REQUIRE(armed.size() == 1);
  CHECK(st.retry_timer == armed.front());
  CHECK(st.last_error
        == "rename /etc/mcfg/auth.tmp -> /etc/mcfg/auth failed: "
           "Is a directory");
  advance(99ms);
  CHECK(files->rename_calls == 2);
  advance(1ms);
  CHECK(files->rename_calls == 3);
  auto rearmed = pending_retry_ids();
  REQUIRE(rearmed.size() == 1);
  CHECK(rearmed.front() != armed.front());
  st = status();
  CHECK(st.retry_timer == rearmed.front());
  CHECK(st.attempts == 2);
  // The fault clears: the next retry lands the latest content.
  files->rename_error = 0;
  advance(100ms);
  CHECK(file() == "cfg/a=1\n");
  CHECK(pending_retry_ids().empty());
  st = status();
  CHECK(st.phase == writer_phase::idle);
  CHECK(st.retry_timer == 0);
  CHECK(st.attempts == 0);
  CHECK(st.last_error.empty());
  CHECK(*refreshes == 2); // no refresh for the failed attempts
}

TEST_CASE_FIXTURE(writer_fixture,
                  "a change while a retry is armed cancels it: the late retry "
                  "is dropped and stale content never lands") {
  log_capture logs;
  start();
  files->rename_error = EISDIR;
  change("cfg/a", 1);
  run();
  auto cancelled = pending_retry_ids();
  REQUIRE(cancelled.size() == 1);
  advance(50ms);
  SUBCASE("the fault persists: the new content is attempted at once") {
    change("cfg/a", 2);
    run();
    CHECK(files->rename_calls == 3);
    CHECK(files->files[tmp_path] == "cfg/a=2\n");
    auto st = status();
    CHECK(st.retry_timer != cancelled.front());
    CHECK(st.retry_timer != 0);
    // The cancelled timer fires at +100 ms: dropped, no attempt.
    advance(50ms);
    CHECK(files->rename_calls == 3);
    CHECK(logs.count("dropped cancelled retry timer "
                     + std::to_string(cancelled.front()))
          == 1);
    // The live timer fires at +150 ms; now the fault clears.
    files->rename_error = 0;
    advance(50ms);
    CHECK(files->rename_calls == 4);
    CHECK(file() == "cfg/a=2\n");
  }
  SUBCASE("the fault clears: the new content lands at once") {
    files->rename_error = 0;
    change("cfg/a", 2);
    run();
    CHECK(file() == "cfg/a=2\n");
    CHECK(files->rename_calls == 3);
    CHECK(status().retry_timer == 0);
    advance(50ms); // when the cancelled timer fires
    CHECK(files->rename_calls == 3);
    CHECK(logs.count("dropped cancelled retry timer") == 1);
  }
  for (auto& content : renamed())
    CHECK(content != "cfg/a=1\n");
  CHECK(pending_retry_ids().empty());
}

TEST_CASE_FIXTURE(writer_fixture,
                  "continuous failure: alive at 9.9 s, exits at the first "
                  "failed attempt at 10 s, temp file deleted, reason says "
                  "which file and why") {
  start();
  files->rename_error = EISDIR;
  change("cfg/a", 1);
  run();
  auto held = sync();
  run();
  CHECK_FALSE(held->answered());
  for (int i = 0; i < 99; ++i)
    advance(100ms); // up to 9.9 s: each attempt fails, each re-arms
  CHECK_FALSE(exits.down());
  CHECK(files->exists(tmp_path));
  CHECK(files->rename_calls == 1 + 100);
  advance(99ms);
  CHECK_FALSE(exits.down());
  advance(1ms); // 10.0 s: this failed attempt is at the deadline
  REQUIRE(exits.down());
  CHECK(files->rename_calls == 1 + 101);
  CHECK_FALSE(files->exists(tmp_path));
  auto reason = **exits.reason;
  CHECK(reason.category() == errc_category);
  CHECK(reason.code() == static_cast<uint8_t>(errc::write_deadline_exceeded));
  CHECK(describe(reason)
        == "gave up writing /etc/mcfg/auth after 10s of failures: last rename "
           "/etc/mcfg/auth.tmp -> /etc/mcfg/auth failed: Is a directory");
  REQUIRE(held->error.has_value());
  CHECK(*held->error == reason);
  CHECK(renamed().size() == 1); // the stale content never got in
}

TEST_CASE_FIXTURE(writer_fixture,
                  "a change at 8 s moves the deadline: alive at 17.9 s, "
                  "exits at 18 s") {
  start();
  files->rename_error = EISDIR;
  change("cfg/a", 1);
  run();
  for (int i = 0; i < 80; ++i)
    advance(100ms); // 8.0 s
  change("cfg/a", 2);
  run();
  for (int i = 0; i < 99; ++i)
    advance(100ms); // 17.9 s
  CHECK_FALSE(exits.down());
  CHECK(status().attempts == 100);
  advance(100ms); // 18.0 s
  CHECK(exits.down());
  CHECK_FALSE(files->exists(tmp_path));
}

TEST_CASE_FIXTURE(writer_fixture,
                  "10,000 queued updates cost at most 2 writes, of the last "
                  "version") {
  start();
  REQUIRE(renamed().size() == 1);
  for (int64_t i = 1; i <= 10'000; ++i)
    change({{"cfg/k" + std::to_string(i % 97), i}, {"cfg/last", i}});
  run();
  CHECK(renamed().size() - 1 <= 2);
  CHECK(file() == expected_file());
  CHECK(file().find("cfg/last=10000\n") != std::string::npos);
  auto st = status();
  CHECK(st.changes == 10'000);
  CHECK(st.applied_version == 10'000);
  CHECK(st.phase == writer_phase::idle);
}

TEST_CASE_FIXTURE(writer_fixture,
                  "sync(version) is held until the file holds that version "
                  "and answered at once when it holds a later one") {
  start();
  CHECK(status().applied_version == 0);
  files->rename_error = EISDIR;
  auto v1 = change({{"cfg/a", 1}});
  auto for_v1 = sync(v1);
  auto for_v2 = sync(v1 + 1); // a version the writer has not received yet
  run();
  CHECK_FALSE(for_v1->answered()); // the rename fails: v1 is not in place
  CHECK_FALSE(for_v2->answered());
  CHECK(status().applied_version == 0);
  files->rename_error = 0;
  advance(100ms); // the retry writes v1
  CHECK(file() == "cfg/a=1\n");
  CHECK(for_v1->value.has_value());
  CHECK_FALSE(for_v2->answered());
  CHECK(status().applied_version == v1);
  auto v2 = change({{"cfg/a", 2}});
  run();
  CHECK(for_v2->value.has_value());
  CHECK(status().applied_version == v2);
  // A version the file already holds or passed: answered at once, even
  // while a later one is owed and failing.
  files->rename_error = EISDIR;
  change({{"cfg/a", 3}});
  run();
  REQUIRE(status().phase == writer_phase::retrying);
  auto for_old = sync(v1);
  auto plain = sync();
  run();
  CHECK(for_old->value.has_value());
  CHECK_FALSE(plain->answered()); // the plain sync waits for the latest
  CHECK(status().applied_version == v2);
  CHECK(file() == "cfg/a=2\n");
  files->rename_error = 0;
  advance(100ms);
  CHECK(plain->value.has_value());
  CHECK(status().applied_version == v2 + 1);
}

TEST_CASE_FIXTURE(writer_fixture,
                  "an update of a version the snapshot already holds is "
                  "dropped, not applied over it") {
  (*truth)["cfg/a"] = config_value{int64_t{5}};
  *version = 5;
  start();
  REQUIRE(file() == "cfg/a=5\n");
  CHECK(status().applied_version == 5);
  // Version 4 was queued for this writer before it read the snapshot at 5.
  caf::anon_send(writer, change_atom::value,
                 config_update{4,
                               {{"cfg/a", config_value{int64_t{4}}, false}}});
  run();
  CHECK(file() == "cfg/a=5\n");
  CHECK(renamed().size() == 1);
  auto st = status();
  CHECK(st.applied_version == 5);
  CHECK(st.changes == 0);
}

TEST_CASE_FIXTURE(writer_fixture,
                  "an update that concerns none of the module's keys moves "
                  "the file's version without a write") {
  start();
  change({{"cfg/a", 1}});
  run();
  REQUIRE(renamed().size() == 2);
  auto v = change({{"other/key", 9}});
  auto held = sync(v);
  run();
  CHECK(held->value.has_value());
  CHECK(renamed().size() == 2);
  CHECK(status().applied_version == v);
}

namespace {

/// The value of `key` in a kv_module rendering; -1 when absent.
int64_t value_in(const std::string& content, const std::string& key) {
  auto pos = content.find(key + "=");
  if (pos == std::string::npos)
    return -1;
  return std::stoll(content.substr(pos + key.size() + 1));
}

} // namespace

TEST_CASE("randomised mailbox orders: a two-key update is never rendered "
          "with only one key applied") {
  log_capture quiet{log::level::error};
  size_t renders = 0;
  for (int seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    writer_fixture f;
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % n); };
    f.start();
    std::vector<std::shared_ptr<reply<caf::ok_atom>>> syncs;
    int64_t last = 0;
    for (int step = 0; step < 60; ++step) {
      switch (pick(9)) {
        case 0:
        case 1:
        case 2: {
          // cfg/a and cfg/b always change together, to the version number.
          auto v = static_cast<int64_t>(*f.version + 1);
          f.change({{"cfg/a", v}, {"cfg/b", v}});
          last = v;
          break;
        }
        case 3:
          caf::anon_send(f.writer, reload_atom::value);
          break;
        case 4:
          caf::anon_send(f.writer, reset_atom::value);
          break;
        case 5:
          syncs.push_back(pick(2) ? f.sync() : f.sync(1 + pick(8)));
          break;
        case 6:
          f.files->rename_error = f.files->rename_error ? 0 : EISDIR;
          break;
        case 7:
          f.advance(100ms);
          break;
        default:
          f.run();
      }
    }
    f.files->rename_error = 0;
    // What is queued, then a retry interval: a retry, or a write held for
    // the end of a burst (coalesce_quiet), is due within it.
    f.run();
    f.advance(100ms);
    REQUIRE_FALSE(f.exits.down());
    for (auto& content : f.renamed()) {
      ++renders;
      CHECK(value_in(content, "cfg/a") == value_in(content, "cfg/b"));
    }
    CHECK(value_in(f.file(), "cfg/a") == (last == 0 ? -1 : last));
    auto st = f.status();
    CHECK(st.applied_version == *f.version);
    for (auto& s : syncs)
      CHECK(s->value.has_value());
  }
  CHECK(renders > 300);
}

TEST_CASE_FIXTURE(writer_fixture,
                  "reload_file rewrites unchanged state, full_reset rebuilds "
                  "it from a fresh snapshot") {
  start();
  change("cfg/a", 1);
  run();
  REQUIRE(renamed().size() == 2);
  caf::anon_send(writer, reload_atom::value);
  run();
  CHECK(renamed().size() == 3);
  CHECK(renamed().back() == "cfg/a=1\n");
  // The truth moves on without telling the writer (a missed event).
  (*truth)["cfg/b"] = config_value{int64_t{7}};
  caf::anon_send(writer, reload_atom::value);
  run();
  CHECK(renamed().back() == "cfg/a=1\n");
  caf::anon_send(writer, reset_atom::value);
  run();
  CHECK(renamed().back() == "cfg/a=1\ncfg/b=7\n");
  CHECK(*refreshes == 5);
}

TEST_CASE_FIXTURE(writer_fixture,
                  "content the module refuses is never written, the last good "
                  "file stays and a later good change lands") {
  start();
  change("cfg/a", 1);
  run();
  REQUIRE(file() == "cfg/a=1\n");
  auto held = sync();
  change("cfg/refuse", 1);
  run();
  CHECK(file() == "cfg/a=1\n");
  CHECK(renamed().size() == 2);
  REQUIRE(held->error.has_value());
  CHECK(describe(*held->error)
        == "refused to write /etc/mcfg/auth: cfg/refuse is set");
  CHECK(pending_retry_ids().empty()); // refusals are not retried
  auto later = sync();
  run();
  CHECK(later->error.has_value());
  CHECK(exits.down() == false);
  // One version removes the refused key and changes another.
  truth->erase("cfg/refuse");
  (*truth)["cfg/a"] = config_value{int64_t{2}};
  caf::anon_send(writer, change_atom::value,
                 config_update{++*version,
                               {{"cfg/a", config_value{int64_t{2}}, false},
                                {"cfg/refuse", {}, true}}});
  run();
  CHECK(file() == "cfg/a=2\n");
  CHECK(status().last_error.empty());
}

TEST_CASE_FIXTURE(writer_fixture,
                  "a leftover temp file is removed at start and the file is "
                  "written from fresh state") {
  files->files[tmp_path] = "half-written by a dead incarnation";
  (*truth)["cfg/a"] = config_value{int64_t{3}};
  start();
  CHECK(file() == "cfg/a=3\n");
  CHECK_FALSE(files->exists(tmp_path));
  CHECK(files->remove_calls == 1);
}

TEST_CASE_FIXTURE(writer_fixture,
                  "a writer killed from outside fails its held syncs") {
  start();
  files->rename_error = EISDIR;
  change("cfg/a", 1);
  auto held = sync();
  run();
  REQUIRE_FALSE(held->answered());
  caf::anon_send_exit(writer, caf::exit_reason::kill);
  run();
  CHECK(exits.down());
  REQUIRE(held->error.has_value());
  CHECK(describe(*held->error)
        == "writer of /etc/mcfg/auth stopped before the file was written");
}

TEST_CASE_FIXTURE(writer_fixture,
                  "a writer stopped by an exit message or killed while "
                  "renames keep failing leaves no temp file behind") {
  int64_t value = 0;
  for (auto reason :
       {caf::exit_reason::user_shutdown, caf::exit_reason::kill}) {
    CAPTURE(caf::to_string(reason));
    files->rename_error = 0;
    start();
    files->rename_error = EISDIR;
    change("cfg/a", ++value);
    run();
    REQUIRE(files->exists(tmp_path)); // the newest secrets wait there
    REQUIRE(status().phase == writer_phase::retrying);
    caf::anon_send_exit(writer, reason);
    run();
    CHECK(exits.down());
    CHECK_FALSE(files->exists(tmp_path));
    CHECK(file() != expected_file()); // the failing rename never landed
  }
}

TEST_CASE_FIXTURE(writer_fixture,
                  "a fault that outlives an incarnation shows in the next "
                  "one's status: for how long, how many restarts, why, and a "
                  "write clears it") {
  log_capture logs;
  auto history = std::make_shared<writer_history>();
  auto spawn = [&] {
    auto s = spec();
    s.history = history;
    writer = spawn_memcached_cfg(sys, std::move(s));
    exits = watch(sys, writer);
    run();
  };
  spawn();
  CHECK(status().restarts == 0);
  CHECK(status().failing_for < caf::timespan{0});
  files->rename_error = EISDIR;
  change("cfg/a", 1);
  run();
  advance(10s);
  REQUIRE(exits.down());
  CHECK(logs.contains("gave up writing /etc/mcfg/auth after 10s of failures: "
                      "last rename /etc/mcfg/auth.tmp -> /etc/mcfg/auth "
                      "failed: Is a directory (failing for 10s, give-up 1 "
                      "since the file was last written)"));
  spawn(); // as a supervisor would
  advance(10s);
  REQUIRE(exits.down());
  CHECK(logs.contains("(failing for 20s, give-up 2 since"));
  spawn();
  advance(3s);
  auto st = status();
  CHECK(st.restarts == 2);
  CHECK(st.failing_for == caf::timespan{23s});
  CHECK(st.last_give_up
        == "gave up writing /etc/mcfg/auth after 10s of failures: last "
           "rename /etc/mcfg/auth.tmp -> /etc/mcfg/auth failed: Is a "
           "directory");
  files->rename_error = 0;
  advance(100ms);
  CHECK(file() == expected_file());
  st = status();
  CHECK(st.restarts == 0);
  CHECK(st.last_give_up.empty());
  CHECK(st.failing_for < caf::timespan{0});
  CHECK(logs.contains("in step again after 2 restarts"));
}

namespace {

int64_t seq_in(const std::string& content) {
  auto pos = content.find("cfg/seq=");
  if (pos == std::string::npos)
    return -1;
  return std::stoll(content.substr(pos + 8));
}

} // namespace

TEST_CASE("randomised schedules: the file ends as the latest state or the "
          "writer exited, and never goes back in time") {
  log_capture quiet{log::level::error};
  constexpr int seeds = 600;
  size_t exited = 0;
  size_t failures_seen = 0;
  for (int seed = 1; seed <= seeds; ++seed) {
    CAPTURE(seed);
    writer_fixture f;
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % n); };
    f.start();
    int64_t seq = 0;
    const caf::timespan steps[] = {0ms,   1ms,   50ms, 99ms, 100ms,
                                   101ms, 250ms, 1s,   3s,   6s};
    for (int step = 0; step < 40 && !f.exits.down(); ++step) {
      switch (pick(10)) {
        case 0:
        case 1:
        case 2:
          f.change("cfg/seq", ++seq);
          break;
        case 3:
          f.change("cfg/k" + std::to_string(pick(3)), pick(4));
          break;
        case 4:
          f.files->rename_error = f.files->rename_error ? 0 : EISDIR;
          break;
        case 5:
          f.files->write_error = pick(3) == 0 ? ENOSPC : 0;
          break;
        case 6:
          caf::anon_send(f.writer, reload_atom::value);
          break;
        default:
          f.advance(steps[pick(10)]);
      }
      if (pick(2) == 0)
        f.run();
      // At most one live timer: every armed id but the one in state is
      // a cancelled one.
      if (!f.exits.down()) {
        auto st = f.status();
        auto ids = f.pending_retry_ids();
        if (st.retry_timer != 0)
          CHECK(std::count(ids.begin(), ids.end(), st.retry_timer) == 1);
        failures_seen += st.failed_attempts > 0;
      }
    }
    f.files->rename_error = 0;
    f.files->write_error = 0;
    f.advance(100ms);
    f.advance(100ms);
    if (f.exits.down()) {
      ++exited;
      CHECK((*f.exits.reason)->code()
            == static_cast<uint8_t>(errc::write_deadline_exceeded));
      CHECK_FALSE(f.files->exists(f.tmp_path));
    } else {
      CHECK(f.file() == f.expected_file());
      CHECK(f.status().phase == writer_phase::idle);
    }
    int64_t last = -1;
    for (auto& content : f.renamed()) {
      auto s = seq_in(content);
      CHECK(s >= last);
      last = std::max(last, s);
    }
  }
  MESSAGE(seeds << " schedules, " << exited << " ended in an exit, "
                << failures_seen << " steps saw failed attempts");
  // The schedule must exercise both outcomes, or it proves little.
  CHECK(exited > 0);
  CHECK(exited < seeds);
}
