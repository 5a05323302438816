#include "memcached_cfg/refresh/refresh_actions.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <limits>
#include <system_error>
#include <thread>
#include <type_traits>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace mcfg {

namespace {

/// strerror without strerror's shared buffer.
std::string os_error(int code) {
  return std::error_code{code, std::generic_category()}.message();
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
         || c == '\f';
}

/// A positive decimal pid, whitespace around it allowed; 0 for anything else.
pid_t parse_pid(std::string_view text) {
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  if (text.empty())
    return 0;
  long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return 0;
    value = value * 10 + (c - '0');
    if (value > std::numeric_limits<pid_t>::max())
      return 0;
  }
  return static_cast<pid_t>(value);
}

} // namespace

result<pid_t> read_pidfile(const std::string& path) {
  // O_NONBLOCK: a FIFO at that path must not block the refresher.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return fail("pidfile " + path + ": " + os_error(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    auto err = errno;
    ::close(fd);
    return fail("pidfile " + path + ": " + os_error(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("pidfile " + path + " is not a regular file");
  }
  // A pid and some whitespace fit easily; anything longer is not a pidfile.
  char buf[64];
  size_t used = 0;
  for (;;) {
    auto n = ::read(fd, buf + used, sizeof(buf) - used);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      auto err = errno;
      ::close(fd);
      return fail("pidfile " + path + ": " + os_error(err));
    }
    if (n == 0)
      break;
    used += static_cast<size_t>(n);
    if (used == sizeof(buf))
      break;
  }
  ::close(fd);
  auto pid = used < sizeof(buf) ? parse_pid(std::string_view{buf, used}) : 0;
  if (pid <= 0)
    return fail("pidfile " + path + " does not hold a pid");
  return pid;
}

namespace {

// Through syscall(): Debian 12's <sys/pidfd.h> (glibc 2.36) declares its
// wrappers without C linkage, so C++ cannot link against them.
int open_pidfd(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int signal_pidfd(int pidfd, int sig) {
  return static_cast<int>(
    ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

/// Reads a small /proc text file of `pid` (its comm); false when it cannot.
bool read_proc_text(pid_t pid, const char* name, std::string& out) {
  auto path = "/proc/" + std::to_string(pid) + "/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  char buf[64];
  auto n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n < 0)
    return false;
  out.assign(buf, static_cast<size_t>(n));
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  return true;
}

/// The path of `pid`'s executable; empty when it cannot be read (another
/// user's process, for a node that is not root).
std::string read_exe(pid_t pid) {
  auto link = "/proc/" + std::to_string(pid) + "/exe";
  char buf[4096];
  auto n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0)
    return {};
  std::string out{buf, static_cast<size_t>(n)};
  constexpr std::string_view deleted = " (deleted)"; // replaced by an upgrade
  if (out.size() > deleted.size()
      && out.compare(out.size() - deleted.size(), deleted.size(), deleted) == 0)
    out.resize(out.size() - deleted.size());
  return out;
}

/// Whether `pid` may be sent the refresh signal, and if not, why not. A stale
/// pidfile can name any process by now: init (which a signal may well
/// confuse), this node itself (SIGHUP would make it reload, in a loop), or
/// whatever program got the pid.
result<void> check_target(pid_t pid, const refresh_signal& sig) {
  auto who = "pid " + std::to_string(pid) + " from " + sig.pidfile;
  if (pid == 1)
    return fail(who + " is init; refusing to signal it");
  if (pid == ::getpid())
    return fail(who + " is mcfgd itself; refusing to signal it");
  if (sig.expect.empty())
    return {};
  std::string comm;
  if (!read_proc_text(pid, "comm", comm))
    return fail(who + ": " + os_error(errno == ENOENT ? ESRCH : errno));
  // The kernel keeps at most 15 characters of a program's name in comm.
  auto expected_comm = sig.expect.substr(0, 15);
  auto exe = read_exe(pid);
  auto exe_name = exe.substr(exe.rfind('/') + 1);
  if (comm != expected_comm || (!exe.empty() && exe_name != sig.expect))
    return fail(who + " is " + (exe.empty() ? comm : comm + " (" + exe + ")")
                + ", not " + sig.expect + "; not signalled");
  return {};
}

std::string describe_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms > 0 && ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

/// Owns posix_spawn's attribute objects for the length of one spawn.
struct spawn_setup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  int failed = 0;

  spawn_setup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    check(posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                           O_RDONLY, 0));
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
    // Descriptors the node holds (sockets, files) are none of the
    // command's business, CLOEXEC or not.
    check(
      posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1));
#endif
    sigset_t none;
    sigemptyset(&none);
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    check(posix_spawnattr_setsigmask(&attr, &none));
    check(posix_spawnattr_setsigdefault(&attr, &all));
    // A process group of its own, so a timeout can kill what it started too.
    check(posix_spawnattr_setpgroup(&attr, 0));
    check(posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK
                                            | POSIX_SPAWN_SETSIGDEF
                                            | POSIX_SPAWN_SETPGROUP));
  }

  ~spawn_setup() {
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }

  spawn_setup(const spawn_setup&) = delete;
  spawn_setup& operator=(const spawn_setup&) = delete;

private:
  void check(int rc) {
    if (rc != 0 && failed == 0)
      failed = rc;
  }
};

} // namespace

namespace {

/// `arg` as a shell would need it: in single quotes when empty or holding
/// a space, a quote or a backslash.
std::string shell_quoted(const std::string& arg) {
  bool plain = !arg.empty() && std::none_of(arg.begin(), arg.end(), [](char c) {
    return is_space(c) || c == '\'' || c == '"' || c == '\\';
  });
  if (plain)
    return arg;
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

} // namespace

std::string describe_command(const std::vector<std::string>& argv) {
  if (argv.empty())
    return "command ``";
  auto out = "command `" + shell_quoted(argv.front()) + "`";
  auto args = argv.size() - 1;
  if (args == 1)
    out += " with 1 argument";
  else if (args > 1)
    out += " with " + std::to_string(args) + " arguments";
  return out;
}

result<void> send_refresh_signal(const refresh_signal& sig) {
  auto read = read_pidfile(sig.pidfile);
  if (!read)
    return read.error();
  pid_t pid = *read;
  auto failed = [&](int err) {
    return fail("pid " + std::to_string(pid) + " from " + sig.pidfile + ": "
                + os_error(err));
  };
  // A pidfd pins the process: if it exits and its pid is reused between the
  // check and the signal, the signal fails (ESRCH) rather than reach the
  // newcomer. Without pidfds (kernel < 5.3), a plain kill.
  int pidfd = open_pidfd(pid);
  if (pidfd < 0 && errno != ENOSYS)
    return failed(errno);
  if (auto allowed = check_target(pid, sig); !allowed) {
    if (pidfd >= 0)
      ::close(pidfd);
    return allowed;
  }
  int rc = pidfd >= 0 ? signal_pidfd(pidfd, sig.signal)
                      : ::kill(pid, sig.signal);
  auto err = errno;
  if (pidfd >= 0)
    ::close(pidfd);
  if (rc != 0)
    return failed(err);
  return {};
}

result<void> run_refresh_command(const refresh_command& cmd,
                                 std::chrono::milliseconds timeout,
                                 const std::atomic<bool>* cancel) {
  auto name = describe_command(cmd.argv);
  if (cmd.argv.empty())
    return fail("command is empty");
  std::vector<char*> argv;
  argv.reserve(cmd.argv.size() + 1);
  for (auto& arg : cmd.argv)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  {
    spawn_setup setup;
    if (setup.failed != 0)
      return fail(name + ": " + os_error(setup.failed));
    auto rc = posix_spawnp(&pid, argv[0], &setup.actions, &setup.attr,
                           argv.data(), environ);
    if (rc != 0)
      return fail(name + ": " + os_error(rc));
  }
  // Poll rather than block in waitpid, so the timeout holds; the poll
  // interval grows from 1 ms to 50 ms, so a quick command costs ~1 ms.
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  int status = 0;
  for (;;) {
    auto r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
      break;
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return fail(name + ": cannot wait for it: " + os_error(errno));
    }
    auto now = clock::now();
    bool cancelled = cancel != nullptr && cancel->load();
    if (now >= deadline || cancelled) {
      // The group is still there: its leader is not reaped yet.
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      if (cancelled)
        return fail(name + " killed: the node is stopping");
      return fail(name + " timed out after " + describe_duration(timeout)
                  + "; killed");
    }
    std::this_thread::sleep_for(
      std::min<clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 0)
      return {};
    return fail(name + " exited with status "
                + std::to_string(WEXITSTATUS(status)));
  }
  if (WIFSIGNALED(status))
    return fail(name + " killed by signal " + std::to_string(WTERMSIG(status)));
  return fail(name + " ended with wait status " + std::to_string(status));
}

refresh_action make_refresh_action(const refresh_spec& spec,
                                   std::chrono::milliseconds command_timeout,
                                   cancel_flag cancel) {
  return std::visit(
    [command_timeout, cancel](const auto& x) -> refresh_action {
      using type = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<type, refresh_signal>) {
        return [x] { return send_refresh_signal(x); };
      } else if constexpr (std::is_same_v<type, refresh_command>) {
        return [x, command_timeout, cancel] {
          return run_refresh_command(x, command_timeout, cancel.get());
        };
      } else {
        return {};
      }
    },
    spec);
}

} // namespace mcfg
