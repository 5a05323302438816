// The writer on a real file system (a temp dir), with simulated time: real
// faults made without privileges, modes, symlinks, leftovers. And, on CAF's
// real scheduler with one thread, what running a writer detached changes
// when its disk hangs.
#include <doctest/doctest.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "kv_module.hpp"
#include "memcached_cfg/actors/memcached_cfg.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "support/actor_probes.hpp"
#include "support/coordinator_fixture.hpp"
#include "support/forwarding_port.hpp"
#include "support/log_capture.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

mode_t mode_of(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

struct posix_writer_fixture : coordinator_fixture {
  temp_dir dir;
  std::string path = dir / "etc/auth";
  std::string tmp_path = path + ".tmp";
  snapshot truth{{"cfg/a", config_value{int64_t{1}}}};
  uint64_t version = 1;
  memcached_cfg_actor writer;
  watcher exits;
  log_capture logs;

  void start(mode_t mode = 0600) {
    writer_spec spec;
    spec.settings.path = path;
    spec.settings.mode = mode;
    spec.make_module = [] { return std::make_unique<kv_module>(); };
    spec.read_snapshot = [this] { return versioned_snapshot{version, truth}; };
    writer = spawn_memcached_cfg(sys, std::move(spec));
    exits = watch(sys, writer);
    run();
  }

  void change(const std::string& key, int64_t value) {
    truth[key] = config_value{value};
    caf::anon_send(writer, change_atom::value,
                   config_update{++version,
                                 {{key, config_value{value}, false}}});
    run();
  }

  writer_status status() {
    auto r = ask<writer_status>(sys, writer, status_atom::value);
    run();
    REQUIRE(r->value);
    return *r->value;
  }
};

} // namespace

TEST_CASE_FIXTURE(posix_writer_fixture,
                  "the file and missing parents are created private, whatever "
                  "the umask") {
  auto old_umask = ::umask(0);
  start();
  ::umask(old_umask);
  CHECK(read_file(path) == "cfg/a=1\n");
  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(dir / "etc") == 0700);
  CHECK_FALSE(std::filesystem::exists(tmp_path));
  change("cfg/b", 2);
  CHECK(read_file(path) == "cfg/a=1\ncfg/b=2\n");
  CHECK(mode_of(path) == 0600);
}

TEST_CASE_FIXTURE(posix_writer_fixture, "a configured mode is applied") {
  start(0640);
  CHECK(mode_of(path) == 0640);
}

TEST_CASE_FIXTURE(posix_writer_fixture,
                  "a real rename failure (target is a non-empty directory) is "
                  "retried and recovers once the directory is removed") {
  std::filesystem::create_directories(path);
  write_text(path + "/keep", "x");
  start();
  auto st = status();
  CHECK(st.phase == writer_phase::retrying);
  CHECK(st.last_error
        == "rename " + tmp_path + " -> " + path + " failed: Is a directory");
  CHECK(std::filesystem::is_directory(path));
  change("cfg/a", 2); // fresh content while failing
  std::filesystem::remove_all(path);
  advance(99ms);
  CHECK_FALSE(std::filesystem::exists(path)); // not before the interval
  advance(1ms);
  CHECK(read_file(path) == "cfg/a=2\n");
  CHECK(mode_of(path) == 0600);
  CHECK(status().phase == writer_phase::idle);
  CHECK_FALSE(exits.down());
}

TEST_CASE_FIXTURE(posix_writer_fixture,
                  "a rename fault held past the deadline makes the writer "
                  "exit and delete its temp file") {
  std::filesystem::create_directories(path);
  write_text(path + "/keep", "x");
  start();
  CHECK(std::filesystem::exists(tmp_path));
  for (int i = 0; i < 100; ++i)
    advance(100ms);
  REQUIRE(exits.down());
  CHECK(describe(**exits.reason)
        == "gave up writing " + path + " after 10s of failures: last rename "
             + tmp_path + " -> " + path + " failed: Is a directory");
  CHECK_FALSE(std::filesystem::exists(tmp_path));
  CHECK(read_file(path + "/keep") == "x"); // nothing of the user's lost
}

TEST_CASE("the POSIX port replaces a symlink at the temp path and never "
          "writes through it") {
  temp_dir dir;
  auto victim = dir / "victim";
  write_text(victim, "precious");
  auto link = dir / "auth.tmp";
  REQUIRE(::symlink(victim.c_str(), link.c_str()) == 0);
  auto port = make_posix_file_port();
  CHECK_FALSE(port->write_file(link, "new content", 0600, true));
  CHECK(read_file(victim) == "precious");
  CHECK_FALSE(std::filesystem::is_symlink(link));
  CHECK(std::filesystem::is_regular_file(link));
  CHECK(read_file(link) == "new content");
  CHECK(mode_of(link) == 0600);
}

TEST_CASE("the POSIX port never writes into a temp file it did not create") {
  // A file planted at the temp path, which its planter can still read
  // through a second name (a hard link) or an open descriptor: opening it
  // with O_TRUNC would have put the secret into the planter's file.
  temp_dir dir;
  auto planted = dir / "planted";
  write_text(planted, "the planter's");
  ::chmod(planted.c_str(), 0666);
  auto tmp = dir / "auth.tmp";
  REQUIRE(::link(planted.c_str(), tmp.c_str()) == 0);
  auto port = make_posix_file_port();
  CHECK_FALSE(port->write_file(tmp, "secret content", 0600, false));
  CHECK(read_file(planted) == "the planter's");
  CHECK(mode_of(planted) == 0666);
  struct stat a {};
  struct stat b {};
  REQUIRE(::stat(planted.c_str(), &a) == 0);
  REQUIRE(::stat(tmp.c_str(), &b) == 0);
  CHECK(a.st_ino != b.st_ino);
  CHECK(a.st_nlink == 1);
  CHECK(b.st_uid == ::geteuid());
  CHECK(read_file(tmp) == "secret content");
  CHECK(mode_of(tmp) == 0600);
}

TEST_CASE_FIXTURE(posix_writer_fixture,
                  "a symlink planted at the temp path is removed by the "
                  "writer, not followed") {
  start();
  auto victim = dir / "victim";
  write_text(victim, "precious");
  REQUIRE(::symlink(victim.c_str(), tmp_path.c_str()) == 0);
  change("cfg/a", 2);
  auto st = status();
  CHECK(st.phase == writer_phase::idle);
  CHECK(read_file(path) == "cfg/a=2\n");
  CHECK(read_file(victim) == "precious");
  CHECK_FALSE(std::filesystem::exists(tmp_path));
  CHECK_FALSE(std::filesystem::is_symlink(path));
}

TEST_CASE_FIXTURE(posix_writer_fixture,
                  "a file planted at the temp path is replaced, not written "
                  "into, and the planter's copy keeps its content") {
  start();
  auto planted = dir / "planted";
  write_text(planted, "the planter's");
  REQUIRE(::link(planted.c_str(), tmp_path.c_str()) == 0);
  change("cfg/a", 2);
  CHECK(status().phase == writer_phase::idle);
  CHECK(read_file(path) == "cfg/a=2\n");
  CHECK(read_file(planted) == "the planter's");
  struct stat st {};
  REQUIRE(::stat(planted.c_str(), &st) == 0);
  CHECK(st.st_nlink == 1); // the auth file is no second name of it
  CHECK(mode_of(path) == 0600);
}

TEST_CASE_FIXTURE(posix_writer_fixture,
                  "a leftover temp file is removed at start") {
  std::filesystem::create_directories(dir / "etc");
  write_text(tmp_path, "half-written by a dead incarnation");
  write_text(path, "old content");
  start();
  CHECK_FALSE(std::filesystem::exists(tmp_path));
  CHECK(read_file(path) == "cfg/a=1\n");
  CHECK(logs.contains("removed leftover temp file " + tmp_path));
}

namespace {

/// The POSIX port, except that writing the temp file `gated` waits, while
/// the gate is closed, as a write or fsync on a stuck disk does.
class gated_port : public forwarding_port {
public:
  explicit gated_port(std::string gated)
    : forwarding_port(make_posix_file_port()), gated_(std::move(gated)) {
  }
  void close_gate() {
    std::lock_guard<std::mutex> guard{mtx_};
    open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      open_ = true;
    }
    cv_.notify_all();
  }
  /// Whether a write is waiting at the closed gate, within `timeout`.
  bool held_within(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_for(guard, timeout, [this] { return waiting_; });
  }
  std::error_code write_file(const std::string& path, std::string_view bytes,
                             mode_t mode, bool durable) override {
    if (path == gated_) {
      std::unique_lock<std::mutex> guard{mtx_};
      waiting_ = !open_;
      cv_.notify_all();
      cv_.wait(guard, [this] { return open_; });
      waiting_ = false;
    }
    return forwarding_port::write_file(path, bytes, mode, durable);
  }

private:
  std::string gated_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool open_ = true;
  bool waiting_ = false;
};

/// Two writers on CAF's real scheduler with one worker thread: `stuck`
/// (its disk hangs when asked to), spawned detached or not, and `other`.
struct one_worker_fixture {
  temp_dir dir;
  std::string stuck_path = dir / "stuck";
  std::string other_path = dir / "other";
  std::shared_ptr<gated_port> port = std::make_shared<gated_port>(stuck_path
                                                                  + ".tmp");
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  memcached_cfg_actor stuck;
  memcached_cfg_actor other;

  explicit one_worker_fixture(bool stuck_detached) {
    add_message_types(cfg);
    cfg.set("scheduler.max-threads", 1);
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    stuck = spawn(stuck_path, stuck_detached);
    other = spawn(other_path, false);
    REQUIRE(synced(stuck, 10s));
    REQUIRE(synced(other, 10s));
  }
  ~one_worker_fixture() {
    port->open_gate();
    caf::anon_send_exit(stuck, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
  }

  memcached_cfg_actor spawn(const std::string& path, bool detached) {
    writer_spec spec;
    spec.settings.path = path;
    spec.make_module = [] { return std::make_unique<kv_module>(); };
    spec.read_snapshot = [] {
      return versioned_snapshot{1, {{"cfg/a", config_value{int64_t{1}}}}};
    };
    spec.files = port;
    spec.detached = detached;
    return spawn_memcached_cfg(*sys, std::move(spec));
  }

  static void change(const memcached_cfg_actor& writer, int64_t value) {
    caf::anon_send(writer, change_atom::value,
                   config_update{static_cast<uint64_t>(value),
                                 {{"cfg/a", config_value{value}, false}}});
  }

  /// Whether `writer` answers sync, i.e. has written, within `timeout`.
  bool synced(const memcached_cfg_actor& writer, caf::timespan timeout) {
    caf::scoped_actor self{*sys};
    bool ok = false;
    self->request(writer, timeout, sync_atom::value)
      .receive([&](caf::ok_atom) { ok = true; }, [](caf::error&) {});
    return ok;
  }
};

} // namespace

TEST_CASE("a detached writer stuck in its write holds up no other actor: "
          "with one scheduler thread, another writer still writes") {
  one_worker_fixture f{/*stuck_detached=*/true};
  f.port->close_gate();
  f.change(f.stuck, 2);
  REQUIRE(f.port->held_within(10s));
  f.change(f.other, 2);
  CHECK(f.synced(f.other, 10s));
  CHECK(read_file(f.other_path) == "cfg/a=2\n");
  CHECK(read_file(f.stuck_path) == "cfg/a=1\n");
  f.port->open_gate();
  CHECK(f.synced(f.stuck, 10s));
  CHECK(read_file(f.stuck_path) == "cfg/a=2\n");
}

TEST_CASE("a writer on the scheduler stuck in its write holds up the only "
          "scheduler thread: the other writer waits for it") {
  one_worker_fixture f{/*stuck_detached=*/false};
  f.port->close_gate();
  f.change(f.stuck, 2);
  REQUIRE(f.port->held_within(10s));
  f.change(f.other, 2);
  // Nothing can run it while the stuck write holds the thread; this bounded
  // wait shows that (why mcfgd detaches its writers), it times nothing.
  CHECK_FALSE(f.synced(f.other, std::chrono::milliseconds(300)));
  CHECK(read_file(f.other_path) == "cfg/a=1\n");
  f.port->open_gate();
  CHECK(f.synced(f.other, 10s));
  CHECK(read_file(f.other_path) == "cfg/a=2\n");
  CHECK(f.synced(f.stuck, 10s));
}
