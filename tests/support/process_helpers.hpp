#pragma once
// Real child processes for the end-to-end tests (a `sleep 30` to signal, a
// daemon, a command line tool), and checks on whether a pid is still alive.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace mcfg::test {

/// Waits up to `timeout` for the process `pid` to exit (a zombie has), woken
/// by the kernel through a pidfd rather than by polling; returns at once
/// when there is no such process.
inline void wait_for_exit(pid_t pid, std::chrono::milliseconds timeout) {
  // Through syscall(), as node/refresh_actions.cpp does.
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0)
    return;
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + timeout;
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock::now());
    int rc = ::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count())));
    if (rc >= 0 || errno != EINTR)
      break;
  }
  ::close(fd);
}

/// A child process, killed and reaped when the object goes.
class child_process {
public:
  /// Starts `args`; with `out` / `err` set, its stdout / stderr go to those
  /// files (truncated, or appended to with `append`), else they are
  /// inherited; with `in` set, its stdin reads that file.
  explicit child_process(std::vector<std::string> args,
                         const std::string& out = {},
                         const std::string& err = {}, bool append = false,
                         const std::string& in = {}) {
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    int mode = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
    if (!out.empty())
      posix_spawn_file_actions_addopen(&files, 1, out.c_str(), mode, 0600);
    if (!err.empty())
      posix_spawn_file_actions_addopen(&files, 2, err.c_str(), mode, 0600);
    if (!in.empty())
      posix_spawn_file_actions_addopen(&files, 0, in.c_str(), O_RDONLY, 0);
    auto rc = posix_spawnp(&pid_, argv[0], &files, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
      throw std::runtime_error("spawn " + args[0] + ": " + std::strerror(rc));
  }

  ~child_process() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const {
    return pid_;
  }

  /// Sends `sig` unless the process was already reaped.
  void signal(int sig) {
    if (!status_)
      ::kill(pid_, sig);
  }

  /// The exit code once it exits normally within `timeout`; -1 for a death
  /// by signal; nothing if it still runs.
  std::optional<int> wait_exit_code(std::chrono::milliseconds timeout) {
    auto st = wait_exit(timeout);
    if (!st)
      return std::nullopt;
    return WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
  }

  /// The wait status once it exits within `timeout`; nothing if it is still
  /// running by then.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (!status_) {
      wait_for_exit(pid_, timeout);
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_)
        status_ = st;
    }
    return status_;
  }

private:
  pid_t pid_ = 0;
  std::optional<int> status_;
};

/// Polls `pred` every 10 ms for up to `timeout`.
template <class Predicate>
bool eventually(Predicate pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

/// Whether `pid` names a live process (a zombie counts as gone).
inline bool process_alive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH)
    return false;
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string stat;
  if (!std::getline(in, stat))
    return false;
  // pid (comm) state ...: comm may hold spaces, so look after the last ')'.
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size()
         || stat[close + 2] != 'Z';
}

/// Waits up to `timeout` for `pid` to be gone.
inline bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
  wait_for_exit(pid, timeout);
  return !process_alive(pid);
}

} // namespace mcfg::test
