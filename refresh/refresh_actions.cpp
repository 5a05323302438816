#include "memcached_cfg/refresh/refresh_actions.hpp"

#include "memcached_cfg/refresh/detail/unique_fd.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <limits>
#include <optional>
#include <string_view>
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

/// A pidfile's pid and the uid owning the file.
struct pidfile_entry {
  pid_t pid = 0;
  uid_t owner = 0;
};

result<pidfile_entry> read_pidfile_entry(const std::string& path);

} // namespace

result<pid_t> read_pidfile(const std::string& path) {
  auto entry = read_pidfile_entry(path);
  if (!entry)
    return entry.error();
  return entry->pid;
}

namespace {

result<pidfile_entry> read_pidfile_entry(const std::string& path) {
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
  return pidfile_entry{pid, st.st_uid};
}

} // namespace

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

/// Up to `limit` bytes of /proc/PID/`name`; false when it cannot be read.
bool read_proc_file(pid_t pid, const char* name, size_t limit,
                    std::string& out) {
  auto path = "/proc/" + std::to_string(pid) + "/" + name;
  detail::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.get() < 0)
    return false;
  out.assign(limit, '\0');
  size_t used = 0;
  while (used < limit) {
    auto n = ::read(fd.get(), out.data() + used, limit - used);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return false;
    if (n == 0)
      break;
    used += static_cast<size_t>(n);
  }
  out.resize(used);
  return true;
}

/// The real uid /proc/PID/status gives `pid`, if it can be read.
std::optional<uid_t> process_uid(pid_t pid) {
  std::string status;
  if (!read_proc_file(pid, "status", 8192, status))
    return std::nullopt;
  auto at = status.find("\nUid:");
  if (at == std::string::npos)
    return std::nullopt;
  auto value = std::string_view{status}.substr(at + 5);
  while (!value.empty() && is_space(value.front()))
    value.remove_prefix(1);
  auto end = value.find_first_of(" \t\n");
  auto uid = parse_pid(value.substr(0, end));
  if (uid <= 0 && value.substr(0, end) != "0")
    return std::nullopt;
  return static_cast<uid_t>(uid);
}

/// Whether memcached's command line loads an auth file (-Y FILE, -YFILE,
/// --auth-file FILE, --auth-file=FILE). memcached 1.6 handles SIGHUP only
/// then: without one, SIGHUP's default action ends it.
bool memcached_has_auth_file(pid_t pid) {
  std::string cmdline;
  if (!read_proc_file(pid, "cmdline", 65536, cmdline))
    return false;
  std::string_view rest{cmdline};
  while (!rest.empty()) {
    auto arg = rest.substr(0, rest.find('\0'));
    rest.remove_prefix(std::min(rest.size(), arg.size() + 1));
    if (arg.substr(0, 2) == "-Y" || arg == "--auth-file"
        || arg.substr(0, 12) == "--auth-file=")
      return true;
  }
  return false;
}

/// Whom the signal may reach, by who wrote the pidfile: a pidfile that
/// root does not own speaks only for its owner's processes. So a node given
/// CAP_KILL (to signal Debian's memcached, user memcache) still signals
/// only processes of the user that owns memcached's pidfile.
result<void> check_owner(pid_t pid, uid_t pidfile_owner,
                         const std::string& who) {
  if (pidfile_owner == 0)
    return {};
  auto uid = process_uid(pid);
  if (!uid)
    return fail(who + ": " + os_error(errno == ENOENT ? ESRCH : errno));
  if (*uid != pidfile_owner)
    return fail(who + " runs as uid " + std::to_string(*uid)
                + ", but the pidfile belongs to uid "
                + std::to_string(pidfile_owner) + "; not signalled");
  return {};
}

/// Whether `pid` may be sent the refresh signal, and if not, why not. A stale
/// pidfile can name any process by now: init (which a signal may well
/// confuse), this node itself (SIGHUP would make it reload, in a loop), or
/// whatever program got the pid.
result<void> check_target(pid_t pid, uid_t pidfile_owner,
                          const refresh_signal& sig) {
  auto who = "pid " + std::to_string(pid) + " from " + sig.pidfile;
  if (pid == 1)
    return fail(who + " is init; refusing to signal it");
  if (pid == ::getpid())
    return fail(who + " is mcfgd itself; refusing to signal it");
  if (auto owned = check_owner(pid, pidfile_owner, who); !owned)
    return owned;
  if (sig.expect.empty())
    return {};
  std::string comm;
  if (!read_proc_file(pid, "comm", 64, comm))
    return fail(who + ": " + os_error(errno == ENOENT ? ESRCH : errno));
  while (!comm.empty() && comm.back() == '\n')
    comm.pop_back();
  // The kernel keeps at most 15 characters of a program's name in comm.
  auto expected_comm = sig.expect.substr(0, 15);
  auto exe = read_exe(pid);
  auto exe_name = exe.substr(exe.rfind('/') + 1);
  if (comm != expected_comm || (!exe.empty() && exe_name != sig.expect))
    return fail(who + " is " + (exe.empty() ? comm : comm + " (" + exe + ")")
                + ", not " + sig.expect + "; not signalled");
  if (sig.expect == "memcached" && sig.signal == SIGHUP
      && !memcached_has_auth_file(pid))
    return fail(who
                + " is memcached without an auth file (-Y): SIGHUP "
                  "would stop it; not signalled");
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
  auto read = read_pidfile_entry(sig.pidfile);
  if (!read)
    return read.error();
  pid_t pid = read->pid;
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
  if (auto allowed = check_target(pid, read->owner, sig); !allowed) {
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
