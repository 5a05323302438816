// The source actors under the test_coordinator: the file_store reading a
// real source file in temp dirs, driven by watcher events (or polls) in
// simulated time, and the shared source of truth.
#include <doctest/doctest.h>

#include <chrono>
#include <ctime>
#include <thread>

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memcached_cfg/actors/memcached_cfg.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/modules/memcached_passwords.hpp"
#include "memcached_cfg/source/file_store.hpp"
#include "memcached_cfg/source/file_watcher.hpp"
#include "memcached_cfg/source/source_of_truth.hpp"
#include "support/actor_probes.hpp"
#include "support/coordinator_fixture.hpp"
#include "support/log_capture.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

std::vector<located_error> validate_passwords(const source_document& doc) {
  if (auto problem = validate_memcached_passwords(doc.values))
    return {doc.locate(problem->key, problem->message)};
  return {};
}

/// Two digits, so that names sort as numbers (the file is in name order).
std::string user(int i) {
  return (i < 10 ? "u0" : "u") + std::to_string(i);
}

std::string users_yaml(int first, int count, const std::string& pw = "p") {
  std::string out = "users:\n";
  for (int i = first; i < first + count; ++i)
    out += "  " + user(i) + ": {password: " + pw + std::to_string(i) + "}\n";
  return out;
}

std::string auth_lines(int first, int count, const std::string& pw = "p") {
  std::string out;
  for (int i = first; i < first + count; ++i)
    out += user(i) + ":" + pw + std::to_string(i) + "\n";
  return out;
}

void append_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, text.data(), text.size())
          == static_cast<ssize_t>(text.size()));
  ::close(fd);
}

/// Dates the file's last modification an hour back: a source that has been
/// quiet for long, read at once at start.
void make_old(const std::string& path) {
  struct timespec times[2];
  REQUIRE(::clock_gettime(CLOCK_REALTIME, &times[0]) == 0);
  times[0].tv_sec -= 3600;
  times[1] = times[0];
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

struct store_fixture : coordinator_fixture {
  temp_dir dir;
  std::string source = dir / "source.yaml";
  std::string auth = dir / "auth";
  std::shared_ptr<source_of_truth> truth = source_of_truth::make();
  file_store_watched_actor store;
  memcached_cfg_actor writer;
  log_capture logs;

  /// Starts the store on `yaml`, written long ago (so read at once), and a
  /// writer of `auth` subscribed to the truth.
  void start(const std::string& yaml, watch_mode mode = watch_mode::events,
             caf::timespan quiet_period = 50ms) {
    write_text(source, yaml);
    make_old(source);
    file_store_spec spec;
    spec.source_path = source;
    spec.truth = truth;
    spec.validate = validate_passwords;
    spec.watch = mode;
    spec.quiet_period = quiet_period;
    store = caf::actor_cast<file_store_watched_actor>(
      spawn_file_store(sys, spec));
    run();
    start_writer();
  }

  void start_writer() {
    writer_spec ws;
    ws.settings.path = auth;
    ws.make_module = make_memcached_passwords;
    ws.subscribe = [t = truth](const memcached_cfg_actor& self) {
      t->subscribe(self);
    };
    ws.read_snapshot = [t = truth] { return t->read(); };
    writer = spawn_memcached_cfg(sys, std::move(ws));
    run();
  }

  /// The watcher reports a batch whose last event is `kind`.
  void event(file_event_kind kind = file_event_kind::modified) {
    caf::anon_send(store, file_event_atom::value, static_cast<uint8_t>(kind),
                   ++events);
    run();
  }

  source_status store_status() {
    auto r = ask<source_status>(sys, store, status_atom::value);
    run();
    REQUIRE(r->value);
    return *r->value;
  }

  /// The store looks now: the version it then holds, or its refusal.
  std::shared_ptr<reply<uint64_t>> store_sync() {
    auto r = ask<uint64_t>(sys, store, sync_atom::value);
    run();
    return r;
  }

  /// Asks the writer for `version`; true when it answered ok.
  bool writer_holds(uint64_t version) {
    auto r = ask<caf::ok_atom>(sys, writer, sync_atom::value, version);
    run();
    return r->value.has_value();
  }

  uint64_t events = 0;
};

} // namespace

TEST_CASE_FIXTURE(store_fixture,
                  "the store applies a good edit once the source settles, "
                  "refuses a bad one keeping the last good file, then "
                  "applies a good one") {
  start("users:\n  alice: {password: a1}\n");
  REQUIRE(read_file(auth) == "alice:a1\n");
  CHECK(truth->version() == 1);
  CHECK(store_status().watching == "events");

  // A good edit is read once nothing was reported for the quiet period.
  write_text(source,
             "users:\n  alice: {password: a1}\n  bob: {password: b1}\n");
  event();
  advance(49ms);
  CHECK(read_file(auth) == "alice:a1\n");
  CHECK(truth->version() == 1);
  advance(1ms);
  CHECK(read_file(auth) == "alice:a1\nbob:b1\n");
  CHECK(truth->version() == 2);
  CHECK(store_status().version == 2);

  SUBCASE("a YAML syntax error") {
    write_text(source, "users:\n  alice: {password: a2\n");
    event(file_event_kind::complete);
    advance(1ms);
    CHECK(read_file(auth) == "alice:a1\nbob:b1\n");
    auto st = store_status();
    CHECK(st.refused_edits == 1);
    CHECK(st.last_error.rfind(source + ":", 0) == 0);
    CHECK(logs.contains("edit refused, keeping the last good state: " + source
                        + ":"));
  }
  SUBCASE("a user memcached would misread, located at its line and column") {
    write_text(source,
               "users:\n  alice: {password: a2}\n  'c:d': {password: x}\n");
    event(file_event_kind::complete);
    advance(1ms);
    CHECK(read_file(auth) == "alice:a1\nbob:b1\n");
    auto st = store_status();
    CHECK(st.refused_edits == 1);
    CHECK(st.last_error.rfind(source + ":3:3: users/c:d:", 0) == 0);
  }
  CHECK(truth->version() == 2);
  // The refusal is logged once, not at every look.
  event();
  advance(50ms);
  CHECK(logs.count("edit refused") == 1);
  CHECK_FALSE(logs.contains("a2")); // never a password in a log line
  // A reload request reports the refusal to its caller.
  auto refused = ask<caf::ok_atom>(sys, store, reload_atom::value);
  run();
  REQUIRE(refused->error.has_value());
  CHECK(describe(*refused->error).find("source refused: " + source)
        != std::string::npos);

  write_text(source, "users:\n  alice: {password: a3}\n");
  event(file_event_kind::complete);
  advance(1ms);
  CHECK(read_file(auth) == "alice:a3\n");
  CHECK(store_status().last_error.empty());
  CHECK(truth->version() == 3);
}

TEST_CASE_FIXTURE(store_fixture,
                  "an in-place save in 10 pieces 20 ms apart is published "
                  "once, whole, 50 ms after its last piece") {
  start(users_yaml(1, 2));
  REQUIRE(truth->version() == 1);
  auto whole = users_yaml(1, 8, "q");
  // Truncated, then filled in 10 pieces; every prefix cut at a line is
  // valid YAML with fewer users.
  write_text(source, "");
  event();
  for (size_t i = 0; i < 10; ++i) {
    advance(20ms);
    auto piece = whole.size() / 10;
    append_text(source,
                whole.substr(i * piece, i == 9 ? std::string::npos : piece));
    event();
    CHECK(truth->version() == 1);
    CHECK(read_file(auth) == auth_lines(1, 2));
  }
  REQUIRE(read_file(source) == whole);
  advance(49ms);
  CHECK(truth->version() == 1);
  advance(1ms);
  CHECK(truth->version() == 2);
  CHECK(read_file(auth) == auth_lines(1, 8, "q"));
  CHECK(store_status().refused_edits == 0);
  CHECK(logs.count("edit refused") == 0);
}

TEST_CASE_FIXTURE(store_fixture,
                  "a save that truncates to a valid prefix and then completes "
                  "publishes the completed file only") {
  start(users_yaml(1, 4));
  // The prefix alone is a valid source with 1 user.
  write_text(source, users_yaml(1, 1, "n"));
  event();
  advance(30ms);
  CHECK(truth->version() == 1);
  write_text(source, users_yaml(1, 4, "n"));
  event();
  event(file_event_kind::complete); // its writer closes it
  advance(1ms);
  CHECK(truth->version() == 2);
  CHECK(read_file(auth) == auth_lines(1, 4, "n"));
  // Nothing more comes of the earlier events.
  advance(100ms);
  CHECK(truth->version() == 2);
}

TEST_CASE_FIXTURE(store_fixture,
                  "a rename into place is read at once, a later modification "
                  "waits the quiet period again") {
  start(users_yaml(1, 1));
  write_text(dir / "tmp.yaml", users_yaml(1, 2));
  REQUIRE(::rename((dir / "tmp.yaml").c_str(), source.c_str()) == 0);
  event(file_event_kind::complete);
  CHECK(truth->version() == 2); // no time passed
  CHECK(read_file(auth) == auth_lines(1, 2));
  // A write in place, reported before its writer closes the file.
  write_text(source, users_yaml(1, 3));
  event(file_event_kind::modified);
  advance(49ms);
  CHECK(truth->version() == 2);
  advance(1ms);
  CHECK(truth->version() == 3);
  CHECK(read_file(auth) == auth_lines(1, 3));
  // The stale timer of the quiet period does nothing once a close settled it.
  write_text(source, users_yaml(1, 4));
  event(file_event_kind::modified);
  event(file_event_kind::complete);
  CHECK(truth->version() == 4);
  advance(50ms);
  CHECK(truth->version() == 4);
}

TEST_CASE_FIXTURE(store_fixture,
                  "with a settle time after a close, a modification reported "
                  "meanwhile makes it wait the quiet period") {
  file_store_spec spec;
  spec.source_path = source;
  spec.truth = truth;
  spec.watch = watch_mode::events;
  spec.settle_complete = 5ms;
  write_text(source, users_yaml(1, 1));
  make_old(source);
  store = caf::actor_cast<file_store_watched_actor>(
    spawn_file_store(sys, spec));
  run();
  REQUIRE(truth->version() == 1);
  write_text(source, users_yaml(1, 2));
  event(file_event_kind::complete);
  advance(4ms);
  CHECK(truth->version() == 1);
  advance(1ms);
  CHECK(truth->version() == 2);
  write_text(source, users_yaml(1, 3));
  event(file_event_kind::complete);
  advance(2ms);
  event(file_event_kind::modified); // a new save began
  advance(3ms);
  CHECK(truth->version() == 2);
  advance(46ms);
  CHECK(truth->version() == 2);
  advance(1ms);
  CHECK(truth->version() == 3);
}

TEST_CASE_FIXTURE(store_fixture,
                  "polling, where inotify is unavailable: a changed file "
                  "counts once two polls in a row read the same bytes") {
  start(users_yaml(1, 1), watch_mode::polling);
  CHECK(store_status().watching == "polling every 100ms");
  write_text(source, users_yaml(1, 2));
  advance(100ms); // first sight: a candidate only
  CHECK(truth->version() == 1);
  append_text(source, "  u03: {password: p3}\n"); // still being written
  advance(100ms);
  CHECK(truth->version() == 1);
  advance(100ms); // unchanged across a poll interval
  CHECK(truth->version() == 2);
  CHECK(read_file(auth) == auth_lines(1, 3));
  advance(100ms);
  advance(100ms);
  CHECK(truth->version() == 2);
}

TEST_CASE_FIXTURE(store_fixture,
                  "what is not a regular file, or is too big, is refused "
                  "with a clear error, the last good file stays and a good "
                  "file is then taken") {
  start(users_yaml(1, 2));
  REQUIRE(truth->version() == 1);
  std::string expected;
  SUBCASE("a FIFO") {
    ::unlink(source.c_str());
    REQUIRE(::mkfifo(source.c_str(), 0600) == 0);
    expected = ": cannot read: a FIFO, not a regular file";
  }
  SUBCASE("a symlink to /dev/zero") {
    ::unlink(source.c_str());
    REQUIRE(::symlink("/dev/zero", source.c_str()) == 0);
    expected = ": cannot read: a character device, not a regular file";
  }
  SUBCASE("a directory") {
    ::unlink(source.c_str());
    REQUIRE(::mkdir(source.c_str(), 0700) == 0);
    expected = ": cannot read: a directory, not a regular file";
  }
  SUBCASE("an oversized file (sparse, 17 MiB)") {
    int fd = ::open(source.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 17 << 20) == 0);
    ::close(fd);
    expected = ": cannot read: the file is 17825792 bytes, more than the "
               "16 MiB a source may have";
  }
  SUBCASE("a deleted source") {
    ::unlink(source.c_str());
    expected = ": cannot read: No such file or directory";
  }
  event();
  advance(50ms);
  auto st = store_status(); // responsive
  CHECK(st.last_error == source + expected);
  CHECK(st.refused_edits == 1);
  CHECK(st.version == 1);
  CHECK(read_file(auth) == auth_lines(1, 2));
  CHECK(writer_holds(1));
  auto r = store_sync();
  REQUIRE(r->error.has_value());
  CHECK(describe(*r->error) == "source refused: " + source + expected);

  // A good file in its place (re-created) is published as the next version.
  std::string gone = "rm -rf '" + source + "'";
  REQUIRE(std::system(gone.c_str()) == 0);
  write_text(source, users_yaml(1, 3));
  event(file_event_kind::complete);
  advance(1ms);
  CHECK(truth->version() == 2);
  CHECK(read_file(auth) == auth_lines(1, 3));
  CHECK(store_status().last_error.empty());
}

TEST_CASE_FIXTURE(store_fixture,
                  "the 8-user boundary: edits that add one user and remove "
                  "another apply with no refusal and no failed sync") {
  start(users_yaml(1, 8));
  REQUIRE(read_file(auth) == auth_lines(1, 8));
  for (int i = 1; i <= 5; ++i) {
    CAPTURE(i);
    write_text(source, users_yaml(1 + i, 8));
    auto v = store_sync();
    REQUIRE(v->value.has_value());
    CHECK(*v->value == static_cast<uint64_t>(1 + i));
    CHECK(writer_holds(*v->value));
    CHECK(read_file(auth) == auth_lines(1 + i, 8));
  }
  CHECK(logs.count("refused") == 0);
  // A ninth user is refused whole, before anything is published.
  write_text(source, users_yaml(1, 9));
  auto v = store_sync();
  REQUIRE(v->error.has_value());
  CHECK(describe(*v->error)
        == "source refused: " + source
             + ":1:1: users: 9 users defined, but "
               "memcached reads at most 8 from its auth file and silently "
               "ignores the rest");
  CHECK(truth->version() == 6);
  CHECK(read_file(auth) == auth_lines(6, 8));
}

TEST_CASE_FIXTURE(store_fixture,
                  "a subscriber is dropped once its actor terminates") {
  start("users:\n  alice: {password: a1}\n");
  CHECK(truth->subscriber_count() == 1);
  caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  run();
  CHECK(truth->subscriber_count() == 0);
  // Publishing with nobody subscribed is fine.
  write_text(source, "users:\n  bob: {password: b1}\n");
  event(file_event_kind::complete);
  advance(1ms);
  CHECK(truth->version() == 2);
  CHECK(read_file(auth) == "alice:a1\n");
}

TEST_CASE("source_of_truth: one update per version, none when nothing "
          "changed") {
  coordinator_fixture f;
  auto truth = source_of_truth::make({{"users/a", config_value{"1"}}});
  CHECK(truth->version() == 1); // the initial snapshot is version 1
  auto update = truth->publish(
    {{"users/a", config_value{"2"}}, {"users/b", config_value{"3"}}});
  CHECK(update.version == 2);
  CHECK(update.changes.size() == 2);
  auto same = truth->publish(truth->read().values);
  CHECK(same.changes.empty()); // unchanged: nothing sent
  CHECK(truth->version() == 2);
  auto now = truth->read();
  CHECK(now.version == 2);
  CHECK(now.values.at("users/a") == config_value{"2"});
}

// The settle rule on every read path (issue 19): an in-place save under way,
// `password: wonder` written and `land` not yet, must never be published by
// a sync or a reload that comes meanwhile.
namespace {

const std::string before = "users:\n  alice:\n    password: a1\n";
// Valid YAML on its own: a save cut here would give alice "wonder".
const std::string half = "users:\n  alice:\n    password: wonder";
const std::string rest = "land\n  bob:\n    password: b1\n";
const std::string whole_auth = "alice:wonderland\nbob:b1\n";

/// A request whose answer is awaited: answered with `version`, or not yet.
bool synced_to(const std::shared_ptr<reply<uint64_t>>& r, uint64_t version) {
  return r->value && *r->value == version && !r->error;
}

} // namespace

TEST_CASE_FIXTURE(store_fixture,
                  "a sync and a reload that come during an unsettled "
                  "in-place save are answered once it settles, with the "
                  "whole save, and not before") {
  start(before);
  REQUIRE(truth->version() == 1);
  write_text(source, half);
  event();
  auto sync = store_sync();
  auto reload = ask<caf::ok_atom>(sys, store, reload_atom::value);
  caf::anon_send(store, reload_atom::value); // as SIGHUP sends it
  run();
  advance(30ms);
  CHECK_FALSE(sync->answered());
  CHECK_FALSE(reload->answered());
  CHECK(truth->version() == 1);
  CHECK(read_file(auth) == "alice:a1\n");
  SUBCASE("settled by its writer's close") {
    append_text(source, rest);
    event();
    CHECK_FALSE(sync->answered());
    event(file_event_kind::complete);
  }
  SUBCASE("settled by the quiet period after its last write") {
    append_text(source, rest);
    event();
    advance(49ms);
    CHECK_FALSE(sync->answered());
    CHECK_FALSE(reload->answered());
    advance(1ms);
  }
  // One version for the save, the whole one: the half was never published.
  CHECK(synced_to(sync, 2));
  CHECK(reload->value.has_value());
  CHECK(truth->version() == 2);
  CHECK(read_file(auth) == whole_auth);
  CHECK(writer_holds(2));
  CHECK(logs.count("now version") == 2);
  CHECK_FALSE(logs.contains("now version 3"));
}

TEST_CASE_FIXTURE(store_fixture,
                  "a sync held during a save that ends refused is answered "
                  "with the refusal the read gives") {
  start(before);
  write_text(source, half);
  event();
  auto sync = store_sync();
  auto reload = ask<caf::ok_atom>(sys, store, reload_atom::value);
  run();
  CHECK_FALSE(sync->answered());
  append_text(source, "\n  'c:d': {password: x}\n");
  event(file_event_kind::complete);
  REQUIRE(sync->error.has_value());
  REQUIRE(reload->error.has_value());
  auto expected = "source refused: " + source + ":4:3: users/c:d:";
  CHECK(describe(*sync->error).rfind(expected, 0) == 0);
  CHECK(describe(*reload->error) == describe(*sync->error));
  CHECK(truth->version() == 1);
  CHECK(read_file(auth) == "alice:a1\n");
  CHECK(store_status().refused_edits == 1);
}

TEST_CASE_FIXTURE(store_fixture,
                  "a sync and a reload held when the store stops are "
                  "answered with an error, not left hanging") {
  start(before);
  write_text(source, half);
  event();
  auto sync = store_sync();
  auto reload = ask<caf::ok_atom>(sys, store, reload_atom::value);
  run();
  REQUIRE_FALSE(sync->answered());
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  run();
  REQUIRE(sync->error.has_value());
  CHECK(*sync->error == caf::sec::request_receiver_down);
  REQUIRE(reload->error.has_value());
  CHECK(*reload->error == caf::sec::request_receiver_down);
  CHECK(truth->version() == 1);
}

TEST_CASE_FIXTURE(store_fixture,
                  "a sync and a reload on a quiet source are answered at "
                  "once, with no time passing") {
  start(before);
  auto same = store_sync();
  CHECK(synced_to(same, 1));
  write_text(source, half + rest); // nothing reported: quiet
  auto sync = store_sync();
  CHECK(synced_to(sync, 2));
  auto reload = ask<caf::ok_atom>(sys, store, reload_atom::value);
  run();
  CHECK(reload->value.has_value());
  CHECK(truth->version() == 2);
  CHECK(read_file(auth) == whole_auth);
}

TEST_CASE_FIXTURE(store_fixture,
                  "at start, a source modified within the quiet period is "
                  "read once it has been quiet that long, and a sync "
                  "meanwhile waits for it") {
  write_text(source, before); // modified just now
  file_store_spec spec;
  spec.source_path = source;
  spec.truth = truth;
  spec.watch = watch_mode::events;
  // Long, so that the real time the file's age is measured in does not
  // matter: the wait is the quiet period less that age.
  spec.quiet_period = 10s;
  store = caf::actor_cast<file_store_watched_actor>(
    spawn_file_store(sys, spec));
  run();
  CHECK(truth->version() == 0);
  auto sync = store_sync();
  CHECK_FALSE(sync->answered());
  advance(9s);
  CHECK_FALSE(sync->answered());
  CHECK(truth->version() == 0);
  advance(1s);
  CHECK(synced_to(sync, 1));
  CHECK(truth->version() == 1);
  advance(20s);
  CHECK(truth->version() == 1);
}

TEST_CASE_FIXTURE(store_fixture,
                  "at start, a source last modified long ago is read at "
                  "once") {
  write_text(source, before);
  make_old(source);
  file_store_spec spec;
  spec.source_path = source;
  spec.truth = truth;
  spec.watch = watch_mode::events;
  store = caf::actor_cast<file_store_watched_actor>(
    spawn_file_store(sys, spec));
  run();
  CHECK(truth->version() == 1);
  CHECK(synced_to(store_sync(), 1));
}

TEST_CASE_FIXTURE(store_fixture,
                  "polling: a sync that sees a change first is answered by "
                  "the poll that confirms it, one on an unchanged file at "
                  "once") {
  start(before, watch_mode::polling);
  CHECK(synced_to(store_sync(), 1));
  write_text(source, half);
  auto sync = store_sync();
  CHECK_FALSE(sync->answered());
  append_text(source, rest); // still being written
  advance(100ms); // another content: not confirmed
  CHECK_FALSE(sync->answered());
  CHECK(truth->version() == 1);
  advance(100ms); // the same bytes again
  CHECK(synced_to(sync, 2));
  CHECK(read_file(auth) == whole_auth);
  CHECK(truth->version() == 2);
}

TEST_CASE_FIXTURE(store_fixture,
                  "when the watch stops, the status says so and why, and "
                  "edits are then taken by polling") {
  start(before);
  REQUIRE(store_status().unreachable.empty());
  caf::anon_send(store, watch_stopped_atom::value,
                 std::string{"poll on inotify failed: Bad address"});
  run();
  auto st = store_status();
  CHECK(st.watching == "polling every 100ms");
  CHECK(st.unreachable
        == "source watch stopped: poll on inotify failed: Bad address; "
           "polling every 100ms instead");
  CHECK(st.last_error.empty()); // not a refused edit
  CHECK(logs.count("source watch stopped") == 1);
  write_text(source, half + rest);
  advance(100ms);
  CHECK(truth->version() == 1);
  advance(100ms);
  CHECK(truth->version() == 2);
  CHECK(read_file(auth) == whole_auth);
  // A second report changes nothing.
  caf::anon_send(store, watch_stopped_atom::value, std::string{"again"});
  run();
  CHECK(store_status().unreachable == st.unreachable);
  CHECK(logs.count("source watch stopped") == 1);
}

namespace {

/// Runs the coordinator, a simulated millisecond at a time, until `pred`
/// holds or 5 s of real time passed: the real watcher's reports come from
/// its own thread.
template <class Predicate>
bool run_until(coordinator_fixture& f, Predicate pred) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    f.advance(1ms);
    std::this_thread::yield();
  }
  return true;
}

} // namespace

TEST_CASE_FIXTURE(store_fixture,
                  "real inotify: a sync and a reload during an in-place save "
                  "held half-written are answered after its close with the "
                  "whole save, never the half") {
  // A quiet period longer than the test: only the close settles the save.
  start(before, watch_mode::automatic, 1h);
  REQUIRE(store_status().watching == "inotify");
  REQUIRE(truth->version() == 1);
  int fd = ::open(source.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, half.data(), half.size()) == ssize_t(half.size()));
  REQUIRE(::fsync(fd) == 0);
  // The kernel queued the events before write returned: whether the store
  // handles them before or after the requests, the requests are held.
  auto sync = store_sync();
  auto reload = ask<caf::ok_atom>(sys, store, reload_atom::value);
  caf::anon_send(store, reload_atom::value); // as SIGHUP sends it
  run();
  // Let the watcher's reports of the half save arrive (bounded): the
  // requests stay held and nothing is published.
  for (int i = 0; i < 50; ++i) {
    advance(1ms);
    std::this_thread::yield();
  }
  CHECK_FALSE(sync->answered());
  CHECK_FALSE(reload->answered());
  CHECK(truth->version() == 1);
  REQUIRE(::write(fd, rest.data(), rest.size()) == ssize_t(rest.size()));
  REQUIRE(::close(fd) == 0);
  REQUIRE(run_until(*this, [&] { return sync->answered(); }));
  REQUIRE(run_until(*this, [&] { return reload->answered(); }));
  CHECK(synced_to(sync, 2));
  CHECK(reload->value.has_value());
  CHECK(truth->version() == 2);
  CHECK(read_file(auth) == whole_auth);
  CHECK_FALSE(logs.contains("now version 3"));
  // The watcher goes with the store, before the temp dir does.
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  run();
}

namespace {

/// A subscriber that records which of its kind got each update, by name.
update_subscriber::behavior_type
recording(update_subscriber::pointer, int name,
          std::shared_ptr<std::vector<int>> got) {
  return {[=](change_atom, const config_update&) { got->push_back(name); }};
}

} // namespace

TEST_CASE_FIXTURE(coordinator_fixture,
                  "subscribers that leave in any order are dropped, and the "
                  "rest keep getting every update in subscription order") {
  auto truth = source_of_truth::make();
  auto got = std::make_shared<std::vector<int>>();
  std::vector<update_subscriber> subs;
  for (int i = 0; i < 10; ++i) {
    subs.push_back(sys.spawn(recording, i, got));
    truth->subscribe(subs.back());
  }
  run();
  CHECK(truth->subscriber_count() == 10);
  // 7 of 10 leave, out of order: past half gone the list is compacted.
  for (int i : {8, 1, 3, 9, 0, 5, 6}) {
    caf::anon_send_exit(subs[i], caf::exit_reason::user_shutdown);
    run();
  }
  CHECK(truth->subscriber_count() == 3);
  truth->publish({{"users/a", config_value{"x"}}});
  run();
  CHECK(*got == std::vector<int>{2, 4, 7});
  // A later subscriber comes after them; one more leaving is dropped too.
  subs.push_back(sys.spawn(recording, 10, got));
  truth->subscribe(subs.back());
  caf::anon_send_exit(subs[4], caf::exit_reason::user_shutdown);
  run();
  CHECK(truth->subscriber_count() == 3);
  got->clear();
  truth->publish({{"users/a", config_value{"y"}}});
  run();
  CHECK(*got == std::vector<int>{2, 7, 10});
  for (int i : {2, 7, 10})
    caf::anon_send_exit(subs[i], caf::exit_reason::user_shutdown);
  run();
  CHECK(truth->subscriber_count() == 0);
}
