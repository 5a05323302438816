// The writer on a real file system (a temp dir), with simulated time: real
// faults made without privileges, modes, symlinks, leftovers.
#include <doctest/doctest.h>

#include <cerrno>

#include <caf/send.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/memcached_cfg.hpp"
#include "kv_module.hpp"
#include "messages/errors.hpp"
#include "support/actor_probes.hpp"
#include "support/coordinator_fixture.hpp"
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
        == "gave up writing " + path
             + " after 10s of failures: last rename " + tmp_path + " -> "
             + path + " failed: Is a directory");
  CHECK_FALSE(std::filesystem::exists(tmp_path));
  CHECK(read_file(path + "/keep") == "x"); // nothing of the user's lost
}

TEST_CASE("the POSIX port refuses a symlink at the temp path") {
  temp_dir dir;
  auto victim = dir / "victim";
  write_text(victim, "precious");
  auto link = dir / "auth.tmp";
  REQUIRE(::symlink(victim.c_str(), link.c_str()) == 0);
  auto port = make_posix_file_port();
  auto err = port->write_file(link, "attacker's content", 0600, true);
  CHECK(err == std::error_code{ELOOP, std::generic_category()});
  CHECK(read_file(victim) == "precious");
  CHECK(std::filesystem::is_symlink(link));
}

TEST_CASE_FIXTURE(posix_writer_fixture,
                  "a symlink planted at the temp path is refused by the "
                  "writer, not followed") {
  start();
  auto victim = dir / "victim";
  write_text(victim, "precious");
  REQUIRE(::symlink(victim.c_str(), tmp_path.c_str()) == 0);
  change("cfg/a", 2);
  auto st = status();
  CHECK(st.phase == writer_phase::retrying);
  CHECK(st.last_error
        == "write " + tmp_path + " failed: Too many levels of symbolic links");
  CHECK(read_file(victim) == "precious");
  CHECK(read_file(path) == "cfg/a=1\n");
  std::filesystem::remove(tmp_path);
  advance(100ms);
  CHECK(read_file(path) == "cfg/a=2\n");
  CHECK(read_file(victim) == "precious");
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
