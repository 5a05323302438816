// mcfgd's locks (programs/node_locks.hpp) on a real file system, checked from
// another process as a second node would see them: F_GETLK on each byte of a
// folder's mcfgd.lock, and lock_files run by a child holding some of them.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <string>

#include "memcached_cfg/programs/node_locks.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;
using namespace mcfg::test;

namespace {

node_config config_of(const std::vector<std::string>& paths) {
  node_config cfg;
  for (auto& p : paths) {
    file_config f;
    f.path = p;
    cfg.files.push_back(f);
  }
  return cfg;
}

/// Who holds `byte` of the lock file at `lock`, as another process asks:
/// its pid, or 0 when nobody does.
pid_t holder_of(const std::string& lock, off_t byte) {
  int fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  struct flock who {};
  who.l_type = F_WRLCK;
  who.l_whence = SEEK_SET;
  who.l_start = byte;
  who.l_len = 1;
  REQUIRE(::fcntl(fd, F_GETLK, &who) == 0);
  ::close(fd);
  return who.l_type == F_UNLCK ? 0 : who.l_pid;
}

/// Runs `f` in a child process and returns its exit code (0: every check
/// in it held). The child asks; this process keeps its locks meanwhile.
template <class F>
int in_child(F f) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0)
    ::_exit(f());
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

} // namespace

TEST_CASE("lock_files holds exactly each file's byte of its folder's "
          "mcfgd.lock, as another process sees it, and creates one lock "
          "file per folder") {
  temp_dir dir;
  std::vector<std::string> paths;
  for (int i = 0; i < 500; ++i)
    paths.push_back(dir / ("a/" + std::to_string(i) + ".auth"));
  paths.push_back(dir / "b/memcached.auth");
  auto cfg = config_of(paths);
  node_locks held;
  REQUIRE_FALSE(lock_files(cfg, held).has_value());
  std::set<off_t> mine;
  for (auto& p : paths)
    mine.insert(lock_byte_of(p));
  REQUIRE(mine.size() == paths.size()); // no two names share a byte here
  auto me = ::getpid();
  auto wrong = in_child([&] {
    int bad = 0;
    for (auto& p : paths) {
      auto lock = folder_lock_of(p);
      auto byte = lock_byte_of(p);
      bad += holder_of(lock, byte) != me;
      // Next to it, below it and far from it: free for another node.
      for (off_t other : {byte - 1, byte + 1, off_t{0}, byte / 2})
        if (other >= 0 && mine.count(other) == 0)
          bad += holder_of(lock, other) != 0;
    }
    return bad > 0 ? 1 : 0;
  });
  CHECK(wrong == 0);
  std::vector<std::string> in_a;
  for (auto& entry : std::filesystem::directory_iterator(dir / "a"))
    in_a.push_back(entry.path().filename().string());
  CHECK(in_a == std::vector<std::string>{"mcfgd.lock"}); // no file written
  CHECK(std::filesystem::exists(dir / "b/mcfgd.lock"));
}

TEST_CASE("a file held by another process is refused with its pid and the "
          "folder's lock, while other files of the folder can be locked") {
  temp_dir dir;
  auto shared = dir / "out/shared.auth";
  auto other = dir / "out/other.auth";
  int ready[2], done[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(done) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) { // the first node: holds `shared` until told
    node_locks held;
    char c = lock_files(config_of({shared}), held) ? 'x' : 'k';
    (void)!::write(ready[1], &c, 1);
    (void)!::read(done[0], &c, 1);
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'k');
  {
    node_locks held;
    auto why = lock_files(config_of({other, shared}), held);
    REQUIRE(why.has_value());
    CHECK(*why
          == "could not start: " + shared + " is in use by another mcfgd, pid "
               + std::to_string(child) + " (lock " + dir / "out/mcfgd.lock"
               + "); nothing written");
  }
  // Asked before this process locks anything there: closing holder_of's
  // descriptor would drop this process's own locks on the file.
  CHECK(holder_of(dir / "out/mcfgd.lock", lock_byte_of(shared)) == child);
  {
    node_locks held;
    CHECK_FALSE(lock_files(config_of({other}), held).has_value());
  }
  REQUIRE(::write(done[1], "x", 1) == 1);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  // Its node gone, the file is free.
  node_locks held;
  CHECK_FALSE(lock_files(config_of({other, shared}), held).has_value());
}
