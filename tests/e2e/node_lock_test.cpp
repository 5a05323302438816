// One node per set of files, on the real binary: a second mcfgd on the same
// node.yaml, or on another node.yaml naming one of the same files, is
// refused at start, says who holds the lock, and writes nothing; the first
// node and its files carry on untouched. Each file is a byte of its folder's
// lock file (mcfgd.lock), so two nodes may share a folder, never a file. A
// lock per folder is an open file per folder: more than the default limit of
// them start too, or are refused plainly when the hard limit is too low.
// Time is real here; every wait is bounded.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "node_harness.hpp"
#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// What a later write would change: content, inode, modification time.
struct file_state {
  std::string content;
  ino_t ino = 0;
  timespec mtime{};

  static file_state of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return {read_file(path), st.st_ino, st.st_mtim};
  }

  bool operator==(const file_state& o) const {
    return content == o.content && ino == o.ino
           && mtime.tv_sec == o.mtime.tv_sec
           && mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

/// A node.yaml in `dir`/`name` (its control socket beside it) keeping
/// `files` (memcached_passwords each) from the source `source`.
std::string write_node_yaml(const temp_dir& dir, const std::string& name,
                            const std::string& source,
                            const std::vector<std::string>& files) {
  fs::create_directories(dir / name);
  auto path = dir / (name + "/node.yaml");
  std::string text = "source: " + source
                     + "\n"
                       "retry: {interval: 100ms, deadline: 10s}\n"
                       "files:\n";
  for (auto& f : files)
    text += "  - module: memcached_passwords\n    path: " + f + "\n";
  write_text(path, text);
  return path;
}

/// Two sources in `dir`: a.yaml with alice, b.yaml with bob.
void write_two_sources(const temp_dir& dir) {
  write_text(dir / "a.yaml", "users:\n  alice: {password: Pw-lock-a}\n");
  write_text(dir / "b.yaml", "users:\n  bob: {password: Pw-lock-b}\n");
}

/// The first node: running, ready, its file written.
struct first_node {
  temp_dir& dir;
  std::string node_yaml;
  std::string err = dir / "first.err";
  child_process mcfgd;

  first_node(temp_dir& d, std::string yaml)
    : dir(d), node_yaml(std::move(yaml)),
      mcfgd({MCFGD, "--config", node_yaml}, dir / "first.out", err) {
    REQUIRE(eventually(
      [&] { return contains(read_file(err), "ready: 1 files written"); }, 20s));
  }

  ~first_node() {
    if (process_alive(mcfgd.pid())) {
      mcfgd.signal(SIGKILL);
      mcfgd.wait_exit(5s);
    }
  }
};

} // namespace

TEST_CASE("a second mcfgd on the same node.yaml exits 1 naming the file and "
          "the holder, and touches neither the files nor the socket") {
  temp_dir dir;
  write_text(dir / "a.yaml", "users:\n  alice: {password: Pw-lock-a}\n");
  auto auth = dir / "out/memcached.auth";
  auto yaml = write_node_yaml(dir, "n1", dir / "a.yaml", {auth});
  first_node first{dir, yaml};
  auto socket = dir / "n1/mcfgd.sock";
  auto before = file_state::of(auth);
  struct stat sock_before {};
  REQUIRE(::lstat(socket.c_str(), &sock_before) == 0);

  auto second = run(dir, {MCFGD, "--config", yaml}, 20s);
  CHECK(second.exit_code == 1);
  CHECK(contains(second.err, yaml + " is in use by another mcfgd, pid "
                               + std::to_string(first.mcfgd.pid())
                               + "; nothing written"));
  CHECK(contains(second.err, "nothing written"));
  // Refused before it bound a socket or started a writer.
  CHECK_FALSE(contains(second.err, "listening on"));
  CHECK(file_state::of(auth) == before);
  CHECK_FALSE(fs::exists(auth + ".tmp"));
  struct stat sock_after {};
  REQUIRE(::lstat(socket.c_str(), &sock_after) == 0);
  CHECK(sock_after.st_ino == sock_before.st_ino);

  // The first goes on: it still answers, and stops cleanly.
  CHECK(process_alive(first.mcfgd.pid()));
  auto status = run(dir, {MCFGCTL, "--config", yaml, "status"});
  CHECK(status.exit_code == 0);
  first.mcfgd.signal(SIGTERM);
  CHECK(first.mcfgd.wait_exit_code(20s) == 0);
  CHECK(file_state::of(auth) == before);
  CHECK_FALSE(contains(second.err + read_file(first.err), "Pw-lock-a"));
}

TEST_CASE("a second mcfgd whose node.yaml shares one file with a running "
          "node is refused and writes none of its files") {
  temp_dir dir;
  write_two_sources(dir);
  auto shared = dir / "out/memcached.auth";
  auto own = dir / "other/memcached.auth";
  auto first_yaml = write_node_yaml(dir, "n1", dir / "a.yaml", {shared});
  // The second's own file comes first: had it started writing, that one
  // would exist.
  auto second_yaml = write_node_yaml(dir, "n2", dir / "b.yaml", {own, shared});
  first_node first{dir, first_yaml};
  auto before = file_state::of(shared);

  auto second = run(dir, {MCFGD, "--config", second_yaml}, 20s);
  CHECK(second.exit_code == 1);
  CHECK(contains(second.err, shared + " is in use by another mcfgd, pid "
                               + std::to_string(first.mcfgd.pid()) + " (lock "
                               + dir / "out/mcfgd.lock"
                               + "); nothing written"));
  CHECK(file_state::of(shared) == before);
  CHECK(read_file(shared) == "alice:Pw-lock-a\n");
  // Not even a lock file or a folder for its own file.
  CHECK_FALSE(fs::exists(dir / "other"));
  CHECK_FALSE(fs::exists(shared + ".tmp"));
  CHECK_FALSE(fs::exists(dir / "n2/mcfgd.sock"));
  CHECK(process_alive(first.mcfgd.pid()));

  // The lock goes with its node: once the first stops, the second starts.
  first.mcfgd.signal(SIGTERM);
  CHECK(first.mcfgd.wait_exit_code(20s) == 0);
  auto err = dir / "second.err";
  child_process later{
    {MCFGD, "--config", second_yaml}, dir / "second.out", err};
  CHECK(eventually(
    [&] { return contains(read_file(err), "ready: 2 files written"); }, 20s));
  CHECK(read_file(shared) == "bob:Pw-lock-b\n");
  CHECK(read_file(own) == "bob:Pw-lock-b\n");
  later.signal(SIGTERM);
  CHECK(later.wait_exit_code(20s) == 0);
  CHECK_FALSE(
    contains(second.err + read_file(first.err) + read_file(err), "Pw-lock"));
}

TEST_CASE("two nodes writing different files of one folder both run, "
          "sharing one lock file in it and creating none per file") {
  temp_dir dir;
  write_two_sources(dir);
  auto mine = dir / "out/a.auth";
  auto theirs = dir / "out/b.auth";
  first_node first{dir, write_node_yaml(dir, "n1", dir / "a.yaml", {mine})};
  auto err = dir / "second.err";
  child_process second{{MCFGD, "--config",
                        write_node_yaml(dir, "n2", dir / "b.yaml", {theirs})},
                       dir / "second.out",
                       err};
  REQUIRE(eventually(
    [&] { return contains(read_file(err), "ready: 1 files written"); }, 20s));
  CHECK(read_file(mine) == "alice:Pw-lock-a\n");
  CHECK(read_file(theirs) == "bob:Pw-lock-b\n");
  std::vector<std::string> names;
  for (auto& entry : fs::directory_iterator(dir / "out"))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a.auth", "b.auth", "mcfgd.lock"});
  CHECK(process_alive(first.mcfgd.pid()));
  second.signal(SIGTERM);
  CHECK(second.wait_exit_code(20s) == 0);
  first.mcfgd.signal(SIGTERM);
  CHECK(first.mcfgd.wait_exit_code(20s) == 0);
}

namespace {

/// 1,200 files, each in a folder of its own: more than the 1,024 open files
/// a process gets by default, as each folder's lock stays open for the
/// node's life.
std::vector<std::string> many_files(const temp_dir& dir) {
  std::vector<std::string> files;
  for (int i = 0; i < 1200; ++i)
    files.push_back(dir / ("out/" + std::to_string(i) + "/memcached.auth"));
  return files;
}

/// The peak resident size of process `pid` so far, in KiB (VmHWM).
long peak_rss_kib(pid_t pid) {
  auto status = read_file("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("VmHWM:");
  REQUIRE(at != std::string::npos);
  return std::stol(status.substr(at + 6));
}

/// The soft limit of open files of process `pid`, as /proc shows it.
std::string soft_open_files_limit(pid_t pid) {
  auto limits = read_file("/proc/" + std::to_string(pid) + "/limits");
  auto at = limits.find("Max open files");
  REQUIRE(at != std::string::npos);
  std::istringstream line{limits.substr(at + 14)};
  std::string soft;
  line >> soft;
  return soft;
}

} // namespace

TEST_CASE("mcfgd with more files than the default 1,024 open files raises "
          "its soft limit within the hard one and writes every file, and a "
          "sync of them all costs no copy of the node per file") {
  temp_dir dir;
  write_text(dir / "a.yaml", "users:\n  alice: {password: Pw-nofile-a}\n");
  auto files = many_files(dir);
  auto yaml = write_node_yaml(dir, "n1", dir / "a.yaml", files);
  auto err = dir / "n1.err";
  child_process mcfgd{{"prlimit", "--nofile=1024:8192", MCFGD, "--config",
                       yaml},
                      dir / "n1.out",
                      err};
  REQUIRE(eventually(
    [&] { return contains(read_file(err), "ready: 1200 files written"); },
    60s));
  // 1,200 folder locks, 2 per pool thread and 256 to spare: no more than it
  // needs.
  CHECK(soft_open_files_limit(mcfgd.pid()) == std::to_string(1200 + 32 + 256));
  for (auto& f : {files.front(), files[600], files.back()})
    CHECK(read_file(f) == "alice:Pw-nofile-a\n");
  // A sync once held a copy of the node's list of files for each file it
  // waited on: 1,200 x 1,200 entries, over 100 MB at its peak.
  auto before = peak_rss_kib(mcfgd.pid());
  auto sync = run(dir, {MCFGCTL, "--config", yaml, "sync"}, 60s);
  CHECK(sync.exit_code == 0);
  CHECK(peak_rss_kib(mcfgd.pid()) - before < 40 * 1024);
  mcfgd.signal(SIGTERM);
  CHECK(mcfgd.wait_exit_code(20s) == 0);
  CHECK_FALSE(contains(read_file(err), "Too many open files"));
}

TEST_CASE("mcfgd whose files need more open files than the hard limit "
          "allows exits 1 saying so, and writes nothing") {
  temp_dir dir;
  write_text(dir / "a.yaml", "users:\n  alice: {password: Pw-nofile-a}\n");
  auto yaml = write_node_yaml(dir, "n1", dir / "a.yaml", many_files(dir));
  auto out = run(
    dir, {"prlimit", "--nofile=1024:1024", MCFGD, "--config", yaml}, 20s);
  CHECK(out.exit_code == 1);
  CHECK(contains(out.err, "could not start: the files' 1200 folders need up "
                          "to 1488 open files, and the hard limit "
                          "(RLIMIT_NOFILE) is 1024; raise it"));
  CHECK_FALSE(fs::exists(dir / "out"));
  CHECK_FALSE(fs::exists(dir / "n1/mcfgd.sock"));
}
