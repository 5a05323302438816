#include "memcached_cfg/control/server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <microhttpd.h>

#include "memcached_cfg/messages/log.hpp"

namespace mcfg {

// -- sockets ------------------------------------------------------------------

namespace {

failure os_error(const std::string& what, int err) {
  return fail(what + ": " + std::strerror(err));
}

/// Whether something accepts connections on the Unix socket at `path`.
bool unix_socket_answers(const sockaddr_un& addr) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  bool answers = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr),
                           sizeof(addr))
                 == 0;
  ::close(fd);
  return answers;
}

} // namespace

listening_socket::listening_socket(listening_socket&& other) noexcept {
  *this = std::move(other);
}

listening_socket&
listening_socket::operator=(listening_socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    other.path_.clear();
    dev_ = other.dev_;
    ino_ = other.ino_;
    name_ = std::move(other.name_);
  }
  return *this;
}

listening_socket::~listening_socket() {
  close();
}

void listening_socket::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
  // Only our own socket file: a later mcfgd may have replaced it.
  struct stat st {};
  if (!path_.empty() && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_
      && st.st_ino == ino_)
    ::unlink(path_.c_str());
  path_.clear();
}

result<listening_socket>
listening_socket::bind_unix(const std::string& path,
                            std::optional<gid_t> group) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return fail("control socket " + path + ": path longer than "
                + std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return fail("control socket " + path + ": exists and is not a socket");
    if (unix_socket_answers(addr))
      return fail("control socket " + path
                  + ": another process is listening on it (is mcfgd "
                    "running?)");
    ::unlink(path.c_str()); // stale: its mcfgd is gone
  }
  listening_socket out;
  out.fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (out.fd_ < 0)
    return os_error("control socket " + path + ": socket", errno);
  // bind creates the file with 0777 & ~umask: no moment with wider rights.
  mode_t mode = group ? 0660 : 0600;
  auto old_mask = ::umask(0777 & ~mode);
  int rc = ::bind(out.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  ::umask(old_mask);
  if (rc != 0)
    return os_error("control socket " + path + ": bind", bind_errno);
  out.path_ = path;
  if (::lstat(path.c_str(), &st) == 0) {
    out.dev_ = st.st_dev;
    out.ino_ = st.st_ino;
  }
  // lchown: the name bind just made, never what a symlink put in its place
  // would point to. (fchown on the socket would change the socket, not its
  // file.)
  if (group && ::lchown(path.c_str(), static_cast<uid_t>(-1), *group) != 0)
    return os_error("control socket " + path + ": chown to group "
                      + std::to_string(*group),
                    errno);
  if (::listen(out.fd_, 64) != 0)
    return os_error("control socket " + path + ": listen", errno);
  out.name_ = "unix:" + path;
  return out;
}

result<listening_socket> listening_socket::bind_tcp(const std::string& host,
                                                    uint16_t port) {
  auto where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found))
    return fail("control listen " + where + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard{found,
                                                             ::freeaddrinfo};
  auto last_error = fail("control listen " + where + ": no address");
  for (auto* ai = found; ai != nullptr; ai = ai->ai_next) {
    listening_socket out;
    out.fd_ = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                       ai->ai_protocol);
    if (out.fd_ < 0) {
      last_error = os_error("control listen " + where + ": socket", errno);
      continue;
    }
    int one = 1;
    ::setsockopt(out.fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(out.fd_, ai->ai_addr, ai->ai_addrlen) != 0
        || ::listen(out.fd_, 64) != 0) {
      last_error = os_error("control listen " + where, errno);
      continue;
    }
    out.name_ = where;
    return out;
  }
  return last_error;
}

bool equal_constant_time(const std::string& a, const std::string& b) {
  auto n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

// -- the server ---------------------------------------------------------------

namespace {

/// A connection from accept to close (MHD's socket context).
struct connection {
  int fd = -1;
  std::chrono::steady_clock::time_point accepted;
  /// The request has arrived and is being answered: no deadline any more.
  std::atomic<bool> answering{false};
};

/// One request's state (MHD's con_cls).
struct request_state {
  std::string body;
  bool too_big = false;
};

/// Whether process `pid` has `group` among its supplementary groups, as the
/// kernel sees them (/proc/PID/status), as it did for the socket's mode.
bool in_supplementary_groups(pid_t pid, gid_t group) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Groups:", 0) == 0) {
      std::istringstream ids{line.substr(7)};
      for (unsigned long id = 0; ids >> id;)
        if (id == group)
          return true;
    }
  return false;
}

/// Whether the peer on the Unix socket `fd` may use the API: mcfgd's own
/// uid, root, or (with `group`) a process in that group. When it may not,
/// the failure says who it is, for the log.
result<void> check_peer(int fd, std::optional<gid_t> group) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return fail("a peer without credentials");
  if (cred.uid == 0 || cred.uid == ::geteuid())
    return {};
  if (group
      && (cred.gid == *group || in_supplementary_groups(cred.pid, *group)))
    return {};
  return fail("uid " + std::to_string(cred.uid));
}

/// Refused clients, logged without letting a flood fill the log (and trip
/// journald's rate limit, which would then drop the node's real errors):
/// the first refusal of each kind is logged in full, the later ones of an
/// interval are counted, and the count is logged once the interval is
/// over, or at stop.
class refusal_log {
public:
  using clock = std::chrono::steady_clock;

  explicit refusal_log(std::chrono::seconds interval) : interval_(interval) {
  }

  /// A refusal of `kind` ("without a token on HOST:PORT"); `line` says
  /// this one in full.
  void refused(const std::string& kind, const std::string& line) {
    auto now = clock::now();
    std::lock_guard<std::mutex> guard{mtx_};
    auto found = kinds_.find(kind);
    if (found != kinds_.end() && now - found->second.since < interval_) {
      ++found->second.more;
      return;
    }
    if (found != kinds_.end())
      summarise(found->first, found->second, now);
    log::warning("control", line);
    kinds_[kind] = window{now, 0};
  }

  /// Logs the counts of the intervals that are over (of all, with `all`).
  void flush(bool all) {
    auto now = clock::now();
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [kind, w] : kinds_)
      if (w.more > 0 && (all || now - w.since >= interval_))
        summarise(kind, w, now);
  }

private:
  struct window {
    clock::time_point since;
    uint64_t more = 0;
  };

  static void summarise(const std::string& kind, window& w,
                        clock::time_point now) {
    if (w.more == 0)
      return;
    auto elapsed = std::chrono::ceil<std::chrono::seconds>(now - w.since);
    log::warning("control", std::to_string(w.more) + " more requests refused "
                              + kind + " in the last "
                              + std::to_string(std::max<long long>(
                                1, static_cast<long long>(elapsed.count())))
                              + " s");
    w.since = now;
    w.more = 0;
  }

  std::chrono::seconds interval_;
  std::mutex mtx_;
  /// A few kinds per listener (no token, a wrong one, another user).
  std::map<std::string, window> kinds_;
};

} // namespace

class control_server::impl {
public:
  struct daemon_ctx {
    impl* owner = nullptr;
    control_listener listener;
    MHD_Daemon* daemon = nullptr;
    /// Until it runs, what MHD says is why it could not start: a warning.
    /// After, it is about clients (a limit reached, a broken request):
    /// debug, so that no client can fill the log.
    std::atomic<bool> running{false};
  };

  impl(control_backend& backend, control_limits limits)
    : backend_(backend), limits_(limits),
      refusals_(limits.refusal_log_interval) {
  }

  ~impl() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
    }
    cv_.notify_all();
    if (watchdog_.joinable())
      watchdog_.join();
    // Waits for every connection's thread (a running sync ends by its own
    // timeout, or sooner when the actors stop).
    for (auto& d : daemons_)
      if (d->daemon)
        MHD_stop_daemon(d->daemon);
    refusals_.flush(true); // no count is lost at stop
  }

  result<void, control_start_error>
  start(std::vector<control_listener> listeners) {
    for (auto& l : listeners) {
      auto d = std::make_unique<daemon_ctx>();
      d->owner = this;
      d->listener = std::move(l);
      daemons_.push_back(std::move(d));
    }
    for (auto& d : daemons_)
      if (auto started = start_daemon(*d); !started)
        return control_start_error{started.error().message,
                                   d->listener.tls.has_value()};
    watchdog_ = std::thread{[this] { watch(); }};
    return {};
  }

private:
  result<void> start_daemon(daemon_ctx& d) {
    auto& l = d.listener;
    // MHD closes the socket it is given at stop; ours closes (and removes
    // the file) after that.
    int fd = ::fcntl(l.socket.fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
      return os_error("control " + l.socket.name() + ": dup", errno);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD
                     | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL
                     | MHD_USE_ERROR_LOG;
    if (l.tls)
      flags |= MHD_USE_TLS;
    // Options in a table: the TLS pair only when given.
    std::vector<MHD_OptionItem> opts = {
      // First, so that every message of MHD's goes to our log.
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&on_mhd_log), &d},
      {MHD_OPTION_LISTEN_SOCKET, fd, nullptr},
      {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(limits_.connections),
       nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT,
       static_cast<intptr_t>(limits_.request_timeout.count()), nullptr},
      {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&on_connection),
       &d},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&on_completed),
       nullptr},
    };
    if (l.tls) {
      opts.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, l.tls->cert.data()});
      opts.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, l.tls->key.data()});
    }
    opts.push_back({MHD_OPTION_END, 0, nullptr});
    d.daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &on_request, &d,
                                MHD_OPTION_ARRAY, opts.data(), MHD_OPTION_END);
    if (!d.daemon) {
      ::close(fd);
      return fail("control " + l.socket.name()
                  + ": libmicrohttpd could not start (see the warnings "
                    "above)");
    }
    d.running = true;
    log::info("control",
              "listening on " + l.socket.name() + (l.tls ? " (HTTPS)" : ""));
    return {};
  }

  // Every callback handed to libmicrohttpd is noexcept: an exception
  // crossing its C frames would end the process (std::terminate). What
  // throws is logged and, for a request, answered 500.
  static void on_mhd_log(void* cls, const char* fmt, va_list ap) noexcept {
    try {
      char buf[512];
      std::vsnprintf(buf, sizeof(buf), fmt, ap);
      std::string line = buf;
      while (!line.empty() && line.back() == '\n')
        line.pop_back();
      auto* d = static_cast<daemon_ctx*>(cls);
      log::write(d->running ? log::level::debug : log::level::warning,
                 "control", d->listener.socket.name() + ": " + line);
    } catch (...) {
      // Out of memory for a log line: the line is lost, the node goes on.
    }
  }

  static void on_connection(void* cls, MHD_Connection* c, void** socket_ctx,
                            MHD_ConnectionNotificationCode code) noexcept {
    auto* d = static_cast<daemon_ctx*>(cls);
    auto& self = *d->owner;
    std::lock_guard<std::mutex> guard{self.mtx_};
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
      // Without memory for its record the connection has no deadline of
      // ours; MHD's idle timeout still ends it.
      auto conn = std::unique_ptr<connection>{new (std::nothrow) connection};
      if (!conn)
        return;
      auto* info = MHD_get_connection_info(c,
                                           MHD_CONNECTION_INFO_CONNECTION_FD);
      conn->fd = info ? info->connect_fd : -1;
      conn->accepted = std::chrono::steady_clock::now();
      try {
        self.connections_.insert(conn.get());
      } catch (...) {
        return;
      }
      *socket_ctx = conn.release();
    } else if (auto conn = static_cast<connection*>(*socket_ctx)) {
      self.connections_.erase(conn);
      delete conn;
      *socket_ctx = nullptr;
    }
  }

  static void on_completed(void*, MHD_Connection*, void** con_cls,
                           MHD_RequestTerminationCode) noexcept {
    delete static_cast<request_state*>(*con_cls);
    *con_cls = nullptr;
  }

  /// Drops connections whose request has not arrived in time: MHD's own
  /// timeout is for idleness, and a client sending a byte a second is
  /// never idle.
  void watch() {
    std::unique_lock<std::mutex> guard{mtx_};
    while (!stopping_) {
      cv_.wait_for(guard, std::chrono::milliseconds(250));
      refusals_.flush(false);
      auto now = std::chrono::steady_clock::now();
      for (auto* conn : connections_)
        if (!conn->answering && conn->fd >= 0
            && now - conn->accepted > limits_.request_timeout) {
          log::warning("control",
                       "dropped a client whose request did not "
                       "arrive within "
                         + std::to_string(limits_.request_timeout.count())
                         + "s");
          // Shut down, not closed: MHD's thread sees the end and cleans up
          // (removing it from this set under the lock before it closes).
          ::shutdown(conn->fd, SHUT_RDWR);
          conn->answering = true;
        }
    }
  }

  static MHD_Result send(MHD_Connection* c, const http_response& res) {
    auto* r = MHD_create_response_from_buffer(
      res.body.size(), const_cast<char*>(res.body.data()),
      MHD_RESPMEM_MUST_COPY);
    if (!r)
      return MHD_NO;
    MHD_add_response_header(r, "Content-Type", res.content_type.c_str());
    // One request per connection: the request deadline then covers it all.
    MHD_add_response_header(r, "Connection", "close");
    for (auto& [key, value] : res.headers)
      MHD_add_response_header(r, key.c_str(), value.c_str());
    auto rc = MHD_queue_response(c, static_cast<unsigned>(res.status), r);
    MHD_destroy_response(r);
    return rc;
  }

  /// Empty when the request may go on; else the refusal to send.
  std::optional<http_response> authorize(daemon_ctx& d, MHD_Connection* c) {
    auto& l = d.listener;
    if (l.socket.is_unix()) {
      auto* info = MHD_get_connection_info(c,
                                           MHD_CONNECTION_INFO_CONNECTION_FD);
      auto allowed = check_peer(info ? info->connect_fd : -1, l.group);
      if (allowed)
        return std::nullopt;
      refusals_.refused("from other users on " + l.socket.name(),
                        "refused a request from " + allowed.error().message
                          + " on " + l.socket.name());
      return error_response(403, "this socket serves mcfgd's own user, "
                                 "root and control.group only");
    }
    auto* auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                             MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && equal_constant_time(auth, "Bearer " + l.token))
      return std::nullopt;
    auto kind = std::string{auth ? "with a wrong token" : "without a token"}
                + " on " + l.socket.name();
    refusals_.refused(kind, "refused a request " + kind);
    auto out = error_response(401, "a bearer token is required "
                                   "(Authorization: Bearer <token>)");
    out.headers.emplace_back("WWW-Authenticate", "Bearer");
    return out;
  }

  static MHD_Result on_request(void* cls, MHD_Connection* c, const char* url,
                               const char* method, const char* version,
                               const char* upload_data,
                               size_t* upload_data_size,
                               void** con_cls) noexcept {
    try {
      return answer(cls, c, url, method, version, upload_data, upload_data_size,
                    con_cls);
    } catch (...) {
      // The exception's text is not logged: it may quote what was read.
      return internal_error(c, method, url);
    }
  }

  /// A 500 with a fixed message for a request whose handling threw; when
  /// even that fails, MHD closes the connection (MHD_NO).
  static MHD_Result internal_error(MHD_Connection* c, const char* method,
                                   const char* url) noexcept {
    try {
      log::error("control", std::string{"answering "} + (method ? method : "")
                              + " " + (url ? url : "")
                              + " threw an exception: answered 500");
      return send(c, error_response(500, "internal error while answering "
                                         "the request"));
    } catch (...) {
      return MHD_NO;
    }
  }

  static MHD_Result answer(void* cls, MHD_Connection* c, const char* url,
                           const char* method, const char*,
                           const char* upload_data, size_t* upload_data_size,
                           void** con_cls) {
    auto* d = static_cast<daemon_ctx*>(cls);
    auto& self = *d->owner;
    auto* st = static_cast<request_state*>(*con_cls);
    if (!st) {
      // Headers complete, body not read yet: refuse before reading it.
      *con_cls = st = new request_state;
      if (auto refusal = self.authorize(*d, c))
        return send(c, *refusal);
      auto* length = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      if (length && std::strtoull(length, nullptr, 10) > max_request_body)
        return send(c, too_big());
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      if (!st->too_big
          && st->body.size() + *upload_data_size <= max_request_body)
        st->body.append(upload_data, *upload_data_size);
      else {
        st->too_big = true;
        st->body.clear();
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (st->too_big)
      return send(c, too_big());
    // Arrived: from here on the time is the node's, not the client's.
    if (auto* info = MHD_get_connection_info(
          c, MHD_CONNECTION_INFO_SOCKET_CONTEXT))
      if (auto* conn = static_cast<connection*>(info->socket_context))
        conn->answering = true;
    http_request req{method, url, std::move(st->body), {}};
    if (auto* files = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                  "files"))
      req.files = files;
    auto res = handle_request(req, self.backend_);
    log::debug("control", req.method + " " + req.path + " -> "
                            + std::to_string(res.status));
    return send(c, res);
  }

  static http_response too_big() {
    return error_response(413, "the request body is larger than "
                                 + std::to_string(max_request_body) + " bytes");
  }

  control_backend& backend_;
  control_limits limits_;
  std::vector<std::unique_ptr<daemon_ctx>> daemons_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::set<connection*> connections_;
  refusal_log refusals_;
  std::thread watchdog_;
};

control_server::control_server(std::unique_ptr<impl> x) : impl_(std::move(x)) {
}

control_server::~control_server() = default;

result<std::unique_ptr<control_server>, control_start_error>
control_server::start(std::vector<control_listener> listeners,
                      control_backend& backend, control_limits limits) {
  auto x = std::make_unique<impl>(backend, limits);
  if (auto started = x->start(std::move(listeners)); !started)
    return started.error();
  return std::unique_ptr<control_server>{new control_server(std::move(x))};
}

} // namespace mcfg
