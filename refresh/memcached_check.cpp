#include "memcached_cfg/refresh/memcached_check.hpp"
#include "memcached_cfg/refresh/detail/socket_owner.hpp"
#include "memcached_cfg/refresh/detail/unique_fd.hpp"
#include "memcached_cfg/refresh/refresh_actions.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "memcached_cfg/messages/result.hpp"
#include "memcached_cfg/modules/memcached_auth_check.hpp"

namespace mcfg {

namespace {

using clock_type = std::chrono::steady_clock;

/// Bounds of one probe: memcached on loopback answers in well under a
/// millisecond, and the refresher runs the check again 50 ms later anyway.
constexpr auto connect_timeout = std::chrono::milliseconds(250);
constexpr auto reply_timeout = std::chrono::milliseconds(250);

/// mcfgd's auth files are a few hundred bytes (8 lines of at most 255).
constexpr size_t max_file_size = 1 << 20;

/// strerror without strerror's shared buffer.
std::string os_error(int code) {
  return std::error_code{code, std::generic_category()}.message();
}

using detail::unique_fd;

// -- files --------------------------------------------------------------------

/// The bytes of the regular file at `path`, at most `limit` of them.
/// `what` names the file in messages ("pidfile /run/x.pid", "/run/auth").
result<std::string> read_small_file(const std::string& path, size_t limit,
                                    const std::string& what) {
  // O_NONBLOCK: a FIFO at that path must not block the runner.
  unique_fd fd{
    ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)};
  if (fd.get() < 0)
    return fail(what + ": " + os_error(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return fail(what + ": " + os_error(errno));
  if (!S_ISREG(st.st_mode))
    return fail(what + " is not a regular file");
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fail(what + ": " + os_error(errno));
    if (n == 0)
      return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit)
      return fail(what + " is larger than " + std::to_string(limit)
                  + " bytes; not read");
  }
}

// -- sockets ------------------------------------------------------------------

struct address {
  sockaddr_storage storage{};
  socklen_t size = 0;
  int family = 0;
};

/// "host:port" or "[v6]:port" to the addresses it names.
result<std::vector<address>> resolve(const std::string& host_port) {
  std::string host;
  std::string port;
  if (!host_port.empty() && host_port.front() == '[') {
    auto close = host_port.find("]:");
    if (close == std::string::npos)
      return fail("memcached address " + host_port + " is not [HOST]:PORT");
    host = host_port.substr(1, close - 1);
    port = host_port.substr(close + 2);
  } else if (auto colon = host_port.rfind(':'); colon != std::string::npos) {
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
  } else {
    return fail("memcached address " + host_port + " is not HOST:PORT");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0)
    return fail("memcached at " + host_port + ": "
                + (rc == EAI_SYSTEM ? os_error(errno) : ::gai_strerror(rc)));
  std::vector<address> out;
  for (auto* i = found; i != nullptr; i = i->ai_next) {
    address a;
    a.size = i->ai_addrlen;
    a.family = i->ai_family;
    std::memcpy(&a.storage, i->ai_addr, i->ai_addrlen);
    out.push_back(a);
  }
  ::freeaddrinfo(found);
  return out;
}

/// Waits until `fd` is ready for `events` or `deadline` passes; 0 when
/// ready, else the errno (ETIMEDOUT at the deadline).
int wait_ready(int fd, short events, clock_type::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock_type::now());
    if (left.count() < 0)
      return ETIMEDOUT;
    pollfd p{fd, events, 0};
    auto rc = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
    if (rc > 0)
      return 0;
    if (rc == 0)
      return ETIMEDOUT;
    if (errno != EINTR)
      return errno;
  }
}

/// A non-blocking socket connected to `a` within connect_timeout; the
/// errno when not.
std::pair<int, int> connect_to(const address& a) {
  int fd = ::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return {-1, errno};
  auto deadline = clock_type::now() + connect_timeout;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.size) == 0)
    return {fd, 0};
  int err = errno;
  if (err == EINPROGRESS) {
    err = wait_ready(fd, POLLOUT, deadline);
    socklen_t len = sizeof(int);
    int so_error = 0;
    if (err == 0
        && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
      err = errno;
    else if (err == 0)
      err = so_error;
  }
  if (err == 0)
    return {fd, 0};
  ::close(fd);
  return {-1, err};
}

/// Sends all of `bytes`; 0 or the errno. MSG_NOSIGNAL: a connection closed
/// by memcached must not raise SIGPIPE in mcfgd.
int send_all(int fd, std::string_view bytes) {
  auto deadline = clock_type::now() + reply_timeout;
  while (!bytes.empty()) {
    auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return errno;
    if (auto err = wait_ready(fd, POLLOUT, deadline))
      return err;
  }
  return 0;
}

/// memcached's reply, read until decided, at most reply_timeout.
result<auth_reply> read_reply(int fd) {
  auto deadline = clock_type::now() + reply_timeout;
  auth_reply_reader reader;
  char buf[256];
  while (reader.state() == auth_reply::incomplete) {
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      reader.feed(std::string_view{buf, static_cast<size_t>(n)});
      continue;
    }
    if (n == 0)
      return fail("closed the connection without a reply");
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return fail(os_error(errno));
    if (auto err = wait_ready(fd, POLLIN, deadline))
      return fail(err == ETIMEDOUT
                    ? "no reply within " + std::to_string(reply_timeout.count())
                        + " ms"
                    : os_error(err));
  }
  return reader.state();
}

// -- diagnosis ----------------------------------------------------------------

/// The ids the kernel checks file access with (the fs uid and gid, which
/// memcached's setuid to its -u user sets with the rest).
struct process_ids {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

/// `pid`'s ids from /proc/PID/status, or why not.
result<process_ids> read_ids(pid_t pid) {
  auto path = "/proc/" + std::to_string(pid) + "/status";
  auto text = read_small_file(path, 1 << 16, "pid " + std::to_string(pid));
  if (!text)
    return text.error();
  process_ids out;
  out.pid = pid;
  bool have_uid = false;
  bool have_gid = false;
  std::istringstream in{*text};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    std::string key;
    fields >> key;
    std::vector<unsigned long> values;
    unsigned long v = 0;
    while (fields >> v)
      values.push_back(v);
    // "Uid:\treal\teffective\tsaved\tfs"
    if (key == "Uid:" && values.size() == 4) {
      out.uid = static_cast<uid_t>(values[3]);
      have_uid = true;
    } else if (key == "Gid:" && values.size() == 4) {
      out.gid = static_cast<gid_t>(values[3]);
      have_gid = true;
    } else if (key == "Groups:") {
      out.groups.assign(values.begin(), values.end());
    }
  }
  if (!have_uid || !have_gid)
    return fail(path + " has no Uid or Gid line");
  return out;
}

/// Whether `ids` may read (4) or search (1) what `st` describes, by its
/// mode bits; root may do both.
bool permitted(const struct stat& st, const process_ids& ids, unsigned bit) {
  if (ids.uid == 0)
    return true;
  if (st.st_uid == ids.uid)
    return (st.st_mode & (bit << 6)) != 0;
  bool in_group = st.st_gid == ids.gid;
  for (auto g : ids.groups)
    in_group = in_group || g == st.st_gid;
  if (in_group)
    return (st.st_mode & (bit << 3)) != 0;
  return (st.st_mode & bit) != 0;
}

/// "mode 0600, owner 0:0".
std::string describe_mode(const struct stat& st) {
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o",
                static_cast<unsigned>(st.st_mode & 07777));
  return std::string{"mode "} + mode + ", owner " + std::to_string(st.st_uid)
         + ":" + std::to_string(st.st_gid);
}

/// Said when mode bits deny: a POSIX ACL may still allow.
std::string acl_note(const std::string& path) {
  if (::getxattr(path.c_str(), "system.posix_acl_access", nullptr, 0) > 0)
    return " (unless its ACL allows it)";
  return {};
}

/// Why `ids` cannot read `path` (a directory on the way it may not search,
/// or the file's own mode), or empty.
std::string access_problem(const std::string& path, const process_ids& ids) {
  auto who = "memcached (pid " + std::to_string(ids.pid) + ", uid "
             + std::to_string(ids.uid) + ")";
  const std::string keeps = ": it keeps its previous users";
  // Every directory from the root down, as the kernel walks the path.
  for (auto slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    auto dir = path.substr(0, slash);
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && !permitted(st, ids, 1))
      return who + " cannot reach " + path + ": it may not search " + dir + " ("
             + describe_mode(st) + ")" + acl_note(dir) + keeps;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return path + ": " + os_error(errno) + keeps;
  if (!permitted(st, ids, 4))
    return who + " cannot read " + path + " (" + describe_mode(st) + ")"
           + acl_note(path) + keeps;
  return {};
}

} // namespace

// -- the check ----------------------------------------------------------------

namespace {

class memcached_check : public consumer_check {
public:
  memcached_check(std::string host_port, std::string pidfile)
    : host_port_(std::move(host_port)), pidfile_(std::move(pidfile)) {
  }

  check_outcome start(const std::string& path) override {
    return guarded([&] { return start_impl(path); });
  }

  check_outcome again() override {
    return guarded([&] { return again_impl(); });
  }

  std::string diagnose(const std::string& path) override {
    try {
      return diagnose_impl(path);
    } catch (const std::exception& e) {
      return std::string{"cannot diagnose "} + path + ": " + e.what();
    } catch (...) {
      return "cannot diagnose " + path;
    }
  }

private:
  /// What the last start() planned.
  enum class mode { none, refused_file, unverifiable, probes };

  template <class F>
  check_outcome guarded(F&& f) {
    // consumer_check.hpp: a check runs on the refresher's runner, which an
    // escaping exception would end.
    try {
      return f();
    } catch (const std::exception& e) {
      return {check_verdict::unreachable,
              std::string{"memcached check failed: "} + e.what()};
    } catch (...) {
      return {check_verdict::unreachable, "memcached check failed"};
    }
  }

  check_outcome start_impl(const std::string& path);
  check_outcome again_impl();
  check_outcome run_probes();
  check_outcome refused_file();
  result<std::vector<auth_reply>>
  ask(const std::vector<memcached_probe>& probes);
  result<auth_reply> probe(const std::vector<address>& addresses,
                           const memcached_credential& c);
  result<auth_reply> probe_on(int fd, const memcached_credential& c);
  std::string stranger_at(int fd);
  std::string diagnose_impl(const std::string& path);
  std::string who_cannot_read(const std::string& path);

  std::string host_port_;
  std::string pidfile_;
  memcached_probe_plan plan_;
  mode mode_ = mode::none;
  std::string path_;
  std::string refusal_;
  memcached_credentials table_;
  std::vector<memcached_probe> probes_;
  /// Whether this run of the probes has checked who owns the socket.
  bool owner_checked_ = false;
};

check_outcome memcached_check::start_impl(const std::string& path) {
  path_ = path;
  auto bytes = read_small_file(path, max_file_size, path);
  if (!bytes) {
    mode_ = mode::none;
    return {check_verdict::unreachable, bytes.error().message};
  }
  auto file = parse_memcached_auth_file(*bytes);
  if (file.refusal) {
    // memcached keeps the table it had: nothing to plan.
    mode_ = mode::refused_file;
    refusal_ = *file.refusal;
    return refused_file();
  }
  auto planned = plan_.plan(file.credentials);
  table_ = std::move(file.credentials);
  probes_ = std::move(planned.probes);
  // No probe can tell this file from what memcached may hold: every table
  // it may hold has exactly these logins. With logins to try, that is a
  // rename of bytes memcached was shown to enforce (a start, a reload, a
  // restarted writer): trying them proves it enforces these bytes. A
  // version that renames nothing (roles only) never gets here; the
  // refresher reports it as not verifiable.
  if (planned.unverifiable && (probes_.empty() || !plan_.known())) {
    mode_ = mode::unverifiable;
    return again_impl();
  }
  mode_ = mode::probes;
  return run_probes();
}

check_outcome memcached_check::again_impl() {
  switch (mode_) {
    case mode::none:
      if (path_.empty())
        return {check_verdict::unreachable, "no memcached check started"};
      return start_impl(path_);
    case mode::refused_file:
      return refused_file();
    case mode::unverifiable:
      return {check_verdict::unverifiable,
              "no probe can tell " + path_
                + " from what memcached may still hold: it has no login "
                  "memcached may lack, and drops none it may hold"};
    case mode::probes:
      return run_probes();
  }
  return {check_verdict::unreachable, "no memcached check started"};
}

check_outcome memcached_check::run_probes() {
  auto replies = ask(probes_);
  if (!replies)
    return {check_verdict::unreachable, replies.error().message};
  auto judged = judge_memcached_probes(probes_, *replies);
  switch (judged.verdict) {
    case probe_verdict::agrees:
      plan_.confirmed(table_);
      return {check_verdict::confirmed, std::move(judged.detail)};
    case probe_verdict::disagrees:
      return {check_verdict::disagrees, std::move(judged.detail)};
    case probe_verdict::unanswered:
      break;
  }
  return {check_verdict::unreachable,
          "memcached at " + host_port_ + ": " + judged.detail};
}

/// memcached refuses the file and keeps its previous table: say so, and
/// which of the logins it may hold it still lets in.
check_outcome memcached_check::refused_file() {
  auto detail = "memcached would refuse " + path_ + ": " + refusal_
                + "; it keeps its previous users";
  std::vector<memcached_probe> held;
  for (auto& c : plan_.may_hold())
    held.push_back({c, true, probe_kind::kept});
  if (held.empty())
    return {check_verdict::disagrees, std::move(detail)};
  auto replies = ask(held);
  if (!replies)
    return {check_verdict::disagrees,
            detail + " (no probe answered: " + replies.error().message + ")"};
  std::set<std::string> users;
  for (size_t i = 0; i < replies->size(); ++i)
    if ((*replies)[i] == auth_reply::accepted)
      users.insert(printable_user(held[i].credential.user));
  if (users.empty())
    return {check_verdict::disagrees,
            detail + " (it lets in none of the logins it may hold)"};
  std::string names;
  for (auto& user : users)
    names += (names.empty() ? "" : ", ") + user;
  return {check_verdict::disagrees,
          detail + " (it still lets in " + names + ")"};
}

/// Every probe's reply, or why memcached could not be asked; stops at the
/// first probe that got no auth reply.
result<std::vector<auth_reply>>
memcached_check::ask(const std::vector<memcached_probe>& probes) {
  auto addresses = resolve(host_port_);
  if (!addresses)
    return addresses.error();
  owner_checked_ = false;
  std::vector<auth_reply> out;
  for (auto& p : probes) {
    auto reply = probe(*addresses, p.credential);
    if (!reply)
      return reply.error();
    out.push_back(*reply);
    if (*reply != auth_reply::accepted && *reply != auth_reply::refused)
      break;
  }
  return out;
}

/// One login on a fresh connection to the first address that connects.
result<auth_reply> memcached_check::probe(const std::vector<address>& addresses,
                                          const memcached_credential& c) {
  int last_error = EADDRNOTAVAIL;
  for (auto& a : addresses) {
    auto [fd, err] = connect_to(a);
    if (fd < 0) {
      last_error = err;
      continue;
    }
    unique_fd guard{fd};
    auto reply = probe_on(fd, c);
    if (!reply)
      return fail("memcached at " + host_port_ + ": " + reply.error().message);
    return reply;
  }
  return fail("memcached at " + host_port_
              + ": connect: " + os_error(last_error));
}

result<auth_reply> memcached_check::probe_on(int fd,
                                             const memcached_credential& c) {
  // The gate: only an auth-enabled memcached gets a password.
  if (auto err = send_all(fd, memcached_auth_gate))
    return fail("send: " + os_error(err));
  auto gate = read_reply(fd);
  if (!gate)
    return gate.error();
  if (*gate != auth_reply::unauthenticated)
    return fail("it answered a command before any login (is it running "
                "with -Y?); no password sent");
  // Once per run of the probes: every connection of a run reaches the
  // same listener, and reading the kernel's socket table costs ~1 ms.
  if (!owner_checked_) {
    if (auto who = stranger_at(fd); !who.empty())
      return fail(who + "; no password sent");
    owner_checked_ = true;
  }
  if (auto err = send_all(fd, memcached_auth_command(c)))
    return fail("send: " + os_error(err));
  return read_reply(fd);
}

/// Empty when the socket `fd` reached may be memcached's: owned by root
/// (memcached binds before it drops to its -u user) or by the uid of the
/// process in the pidfile (which the refresh's `expect` checks). Else who
/// owns it. Not checked without a pidfile (a command refresh) or for a
/// socket not on this host.
std::string memcached_check::stranger_at(int fd) {
  if (pidfile_.empty())
    return {};
  auto owner = detail::peer_socket_uid(fd);
  if (!owner || *owner == 0)
    return {};
  auto pid = read_pidfile(pidfile_);
  if (!pid)
    return {};
  auto ids = read_ids(*pid);
  if (!ids || ids->uid == *owner)
    return {};
  return "the socket it reached belongs to uid " + std::to_string(*owner)
         + ", not to root or memcached's uid " + std::to_string(ids->uid)
         + " (pid " + std::to_string(*pid) + " from " + pidfile_
         + "): another program listens on memcached's port";
}

std::string memcached_check::who_cannot_read(const std::string& path) {
  if (pidfile_.empty())
    return {};
  auto pid = read_pidfile(pidfile_);
  if (!pid)
    return {};
  auto ids = read_ids(*pid);
  if (!ids) {
    if (::kill(*pid, 0) != 0 && errno == ESRCH)
      return "memcached is not running: pid " + std::to_string(*pid) + " from "
             + pidfile_ + " does not exist";
    return {};
  }
  return access_problem(path, *ids);
}

std::string memcached_check::diagnose_impl(const std::string& path) {
  std::vector<std::string> found;
  if (auto why = who_cannot_read(path); !why.empty())
    found.push_back(std::move(why));
  if (auto bytes = read_small_file(path, max_file_size, path); !bytes) {
    if (found.empty())
      found.push_back(bytes.error().message
                      + ": memcached keeps its previous users");
  } else if (auto file = parse_memcached_auth_file(*bytes); file.refusal) {
    found.push_back("memcached would refuse " + path + ": " + *file.refusal
                    + "; it keeps its previous users");
  } else if (!file.problems.empty()) {
    auto text = "memcached reads " + path + " otherwise than written: ";
    for (size_t i = 0; i < file.problems.size(); ++i)
      text += (i == 0 ? "" : "; ") + file.problems[i];
    found.push_back(std::move(text));
  }
  std::string out;
  for (auto& x : found)
    out += (out.empty() ? "" : "; also ") + x;
  return out;
}

} // namespace

std::unique_ptr<consumer_check> make_memcached_check(std::string host_port,
                                                     std::string pidfile) {
  return std::make_unique<memcached_check>(std::move(host_port),
                                           std::move(pidfile));
}

} // namespace mcfg
