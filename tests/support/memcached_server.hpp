#pragma once
// A real memcached (Debian's package, /usr/bin/memcached) for end-to-end
// tests: listening on 127.0.0.1 only, on a free TCP port, UDP off, with
// ASCII authentication from an auth file (`-Y FILE`). The constructor
// returns once the daemon accepts connections (at most `start_timeout`), or
// throws std::runtime_error with memcached's own stderr; the destructor stops
// it (SIGTERM, then SIGKILL after `stop_timeout`). Sleeps are allowed here:
// this is a helper for tests against real processes.
//
// memcached's own -P writes a pidfile only with -d (daemonize), and a
// daemon would not be our child; so the helper runs it in the foreground
// and writes the child's pid to `pidfile()` itself — exactly what a node's
// refresh_signal{SIGHUP, pidfile} reads. memcached re-reads the -Y file on
// SIGHUP, though only on its next clock tick (once a second): poll for the
// effect, allow ~2 s.
//
// Run as root, memcached refuses to start without -u; the helper passes
// `-u root` (or `user`), so the daemon can still read a 0600 auth file on
// reload.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

extern char** environ;

namespace mcfg::test {

struct memcached_options {
  /// The -Y file; must exist and be readable when the server starts.
  std::string auth_file;
  /// Where to write the daemon's pid; empty: a file in the helper's own
  /// temp dir.
  std::string pidfile;
  std::string binary = "/usr/bin/memcached";
  std::chrono::milliseconds start_timeout = std::chrono::seconds(5);
  std::chrono::milliseconds stop_timeout = std::chrono::seconds(5);
  /// Appended to the command line.
  std::vector<std::string> extra_args;
  /// The TCP port; 0: a free one (retried on another if taken meanwhile).
  /// A fixed port lets a node.yaml name it before the daemon starts.
  uint16_t port = 0;
  /// The user memcached runs as when started by root (`-u`); as Debian's
  /// package runs it as `memcache`, a test may run it as `nobody`.
  std::string user = "root";
};

/// Whether the memcached binary is there to run.
inline bool
memcached_installed(const std::string& binary = "/usr/bin/memcached") {
  return ::access(binary.c_str(), X_OK) == 0;
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound with port 0,
/// then released).
inline uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw std::runtime_error(std::string{"socket: "} + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    auto err = errno;
    ::close(fd);
    throw std::runtime_error(std::string{"bind 127.0.0.1:0: "}
                             + std::strerror(err));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// Whether something accepts a TCP connection on 127.0.0.1:`port` within
/// `timeout`.
inline bool loopback_accepts(uint16_t port, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    ok = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      int err = 0;
      socklen_t len = sizeof(err);
      ok = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  ::close(fd);
  return ok;
}

class memcached_server {
public:
  explicit memcached_server(memcached_options opts) : opts_(std::move(opts)) {
    if (opts_.pidfile.empty())
      opts_.pidfile = dir_ / "memcached.pid";
    log_file_ = dir_ / "memcached.stderr";
    // The port is free when picked, but another process may take it before
    // memcached binds it: then memcached exits, and we try another.
    std::string last_failure;
    for (int attempt = 0; attempt < (opts_.port != 0 ? 1 : 3); ++attempt) {
      if (try_start(last_failure))
        return;
    }
    throw std::runtime_error("memcached did not start: " + last_failure);
  }

  ~memcached_server() {
    stop();
  }

  memcached_server(const memcached_server&) = delete;
  memcached_server& operator=(const memcached_server&) = delete;

  uint16_t port() const {
    return port_;
  }

  /// The daemon's pid; 0 once stopped.
  pid_t pid() const {
    return pid_;
  }

  const std::string& pidfile() const {
    return opts_.pidfile;
  }

  const std::string& auth_file() const {
    return opts_.auth_file;
  }

  /// What memcached wrote on stderr so far.
  std::string stderr_text() const {
    return read_file(log_file_);
  }

  /// Whether the daemon is still running (reaps it if it has exited).
  bool running() {
    if (pid_ == 0)
      return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      exit_status_ = status;
      return false;
    }
    return true;
  }

  /// The wait status once the daemon has exited and been reaped.
  std::optional<int> exit_status() const {
    return exit_status_;
  }

  /// SIGTERM, wait up to stop_timeout, then SIGKILL. Idempotent.
  void stop() {
    if (pid_ == 0)
      return;
    ::kill(pid_, SIGTERM);
    if (!wait_exit(opts_.stop_timeout)) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      exit_status_ = status;
      pid_ = 0;
    }
  }

private:
  bool try_start(std::string& failure) {
    port_ = opts_.port != 0 ? opts_.port : free_loopback_port();
    std::vector<std::string> args{opts_.binary, "-p", std::to_string(port_),
                                  "-U",         "0",  "-l",
                                  "127.0.0.1",  "-Y", opts_.auth_file,
                                  "-t",         "1",  "-m",
                                  "16",         "-c", "64"};
    if (::geteuid() == 0) {
      args.emplace_back("-u");
      args.emplace_back(opts_.user);
    }
    args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                     O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    auto rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
      throw std::runtime_error("spawning " + opts_.binary + ": "
                               + std::strerror(rc));
    pid_ = pid;
    exit_status_.reset();

    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + opts_.start_timeout;
    while (clock::now() < deadline) {
      if (!running()) {
        failure = describe_exit() + ": " + stderr_text();
        return false;
      }
      if (loopback_accepts(port_, std::chrono::milliseconds(200))
          && running()) {
        write_text(opts_.pidfile, std::to_string(pid_) + "\n");
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
    throw std::runtime_error("memcached did not accept connections on port "
                             + std::to_string(port_) + " within "
                             + std::to_string(opts_.start_timeout.count())
                             + "ms: " + stderr_text());
  }

  /// Reaps the daemon if it exits within `timeout`.
  bool wait_exit(std::chrono::milliseconds timeout) {
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + timeout;
    for (;;) {
      if (!running())
        return true;
      if (clock::now() >= deadline)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  std::string describe_exit() const {
    if (!exit_status_)
      return "still running";
    auto st = *exit_status_;
    if (WIFEXITED(st))
      return "exited with status " + std::to_string(WEXITSTATUS(st));
    if (WIFSIGNALED(st))
      return "killed by signal " + std::to_string(WTERMSIG(st));
    return "ended";
  }

  temp_dir dir_;
  memcached_options opts_;
  std::string log_file_;
  uint16_t port_ = 0;
  pid_t pid_ = 0;
  std::optional<int> exit_status_;
};

} // namespace mcfg::test
