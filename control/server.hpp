#pragma once
// The control API's HTTP server (libmicrohttpd): a Unix-domain socket that
// only mcfgd's own uid, root and an optional group may use (SO_PEERCRED),
// and an optional TCP socket where every request carries a bearer token
// (HTTPS when given a certificate). Every request is bounded: a body cap
// (api.hpp's max_request_body), a deadline for the request to
// arrive, a limit on concurrent connections. Each connection has its own
// thread, so a slow client or a long sync never delays another client, and
// the writers never wait for any of them.
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "memcached_cfg/control/api.hpp"
#include "memcached_cfg/messages/result.hpp"

namespace mcfg {

/// A bound, listening socket. A Unix socket's file is removed with it
/// (unless something else has replaced it since).
class listening_socket {
public:
  listening_socket() = default;
  listening_socket(listening_socket&& other) noexcept;
  listening_socket& operator=(listening_socket&& other) noexcept;
  ~listening_socket();

  int fd() const {
    return fd_;
  }
  bool is_unix() const {
    return !path_.empty();
  }
  /// "unix:PATH" or "HOST:PORT", for logs.
  const std::string& name() const {
    return name_;
  }

  /// Binds `path` with mode 0600 (0660 with a group) from the start: the
  /// file never exists with wider rights. A stale socket file is replaced; a
  /// socket something still answers on, or a file that is no socket, is an
  /// error. Sets the process umask for the bind, so call it before any
  /// other thread starts.
  static result<listening_socket> bind_unix(const std::string& path,
                                            std::optional<gid_t> group);

  /// Binds `host:port` (numeric address or name).
  static result<listening_socket> bind_tcp(const std::string& host,
                                           uint16_t port);

private:
  void close();

  int fd_ = -1;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::string name_;
};

struct tls_pem {
  std::string cert;
  std::string key;
};

/// One socket and who may use it.
struct control_listener {
  listening_socket socket;
  /// Unix socket: a group whose members may also use it.
  std::optional<gid_t> group;
  /// TCP: the bearer token every request must carry (required there).
  std::string token;
  /// TCP: serve HTTPS with this certificate and key.
  std::optional<tls_pem> tls;
};

struct control_limits {
  /// Concurrent connections per listener; more are closed at accept.
  unsigned connections = 32;
  /// From accept until the request (headers and body) has arrived, and
  /// the most a connection may sit idle.
  std::chrono::seconds request_timeout{10};
  /// Refused clients: the first of each kind (no token, a wrong token,
  /// another user; per listener) is logged, later ones are counted and the
  /// count logged once per interval.
  std::chrono::seconds refusal_log_interval{60};
};

/// Why a server did not start.
struct control_start_error {
  std::string message;
  /// The listener that failed serves HTTPS: most likely its certificate or
  /// key does not load (bad configuration).
  bool tls = false;
};

/// Serves `handle_request` on the listeners until destroyed. The backend
/// must outlive it.
class control_server {
public:
  static result<std::unique_ptr<control_server>, control_start_error>
  start(std::vector<control_listener> listeners, control_backend& backend,
        control_limits limits = {});

  ~control_server();

private:
  class impl;
  explicit control_server(std::unique_ptr<impl> x);
  std::unique_ptr<impl> impl_;
};

/// Whether `a` and `b` are equal, in time that depends on their lengths
/// only.
bool equal_constant_time(const std::string& a, const std::string& b);

} // namespace mcfg
