#pragma once
// A tiny blocking client for memcached's ASCII protocol, with ASCII
// authentication (memcached 1.6 -Y): for end-to-end tests. It only ever
// connects to 127.0.0.1, and every socket operation has a timeout, so a test
// can fail but never hang.
//
// ASCII auth, as memcached 1.6.18's proto_text.c implements it: until
// authenticated, the only command is
//
//   set <any key> <any flags> <any exptime> <len>\r\n<user> <password>\r\n
//
// answered `STORED` (authenticated: the connection now takes every command)
// or `CLIENT_ERROR authentication failure` (not authenticated; the
// connection stays open and may try again). Any other command before that is
// answered `CLIENT_ERROR unauthenticated`.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

namespace mcfg::test {

/// What memcached answers an accepted auth; anything else is not.
inline constexpr const char* memcached_auth_ok = "STORED";
inline constexpr const char* memcached_auth_refused
  = "CLIENT_ERROR authentication failure";
inline constexpr const char* memcached_unauthenticated
  = "CLIENT_ERROR unauthenticated";

class memcached_client {
public:
  /// Connects to 127.0.0.1:`port`; throws std::runtime_error on failure.
  /// `timeout` bounds the connect and every later send and receive.
  explicit memcached_client(uint16_t port, std::chrono::milliseconds timeout
                                           = std::chrono::seconds(2))
    : timeout_(timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0)
      fail("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      if (errno != EINPROGRESS)
        fail_and_close("connect 127.0.0.1:" + std::to_string(port));
      pollfd p{fd_, POLLOUT, 0};
      auto n = ::poll(&p, 1, static_cast<int>(timeout_.count()));
      if (n == 0) {
        errno = ETIMEDOUT;
        fail_and_close("connect 127.0.0.1:" + std::to_string(port));
      }
      int err = 0;
      socklen_t len = sizeof(err);
      if (n < 0 || ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        fail_and_close("connect 127.0.0.1:" + std::to_string(port));
      if (err != 0) {
        errno = err;
        fail_and_close("connect 127.0.0.1:" + std::to_string(port));
      }
    }
    // Back to blocking, bounded by SO_RCVTIMEO / SO_SNDTIMEO.
    auto flags = ::fcntl(fd_, F_GETFL);
    ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout_.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout_.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }

  ~memcached_client() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  memcached_client(const memcached_client&) = delete;
  memcached_client& operator=(const memcached_client&) = delete;

  /// Sends the ASCII auth command; memcached's reply line (no CRLF):
  /// memcached_auth_ok or memcached_auth_refused.
  std::string authenticate(const std::string& user,
                           const std::string& password) {
    auto token = user + " " + password;
    send_all("set auth 0 0 " + std::to_string(token.size()) + "\r\n" + token
             + "\r\n");
    return read_line();
  }

  /// `set key 0 0 len`; the reply line, "STORED" on success.
  std::string set(const std::string& key, const std::string& value) {
    send_all("set " + key + " 0 0 " + std::to_string(value.size()) + "\r\n"
             + value + "\r\n");
    return read_line();
  }

  /// The value under `key`, nothing on a miss; throws on any reply that is
  /// neither (e.g. CLIENT_ERROR unauthenticated), with the reply in it.
  std::optional<std::string> get(const std::string& key) {
    send_all("get " + key + "\r\n");
    auto line = read_line();
    if (line == "END")
      return std::nullopt;
    auto prefix = "VALUE " + key + " ";
    if (line.compare(0, prefix.size(), prefix) != 0)
      throw std::runtime_error("memcached: unexpected reply to get: " + line);
    auto last_space = line.rfind(' ');
    auto size = std::stoul(line.substr(last_space + 1));
    auto data = read_exact(size + 2);
    if (data.compare(size, 2, "\r\n") != 0)
      throw std::runtime_error("memcached: value not ended by CRLF");
    data.resize(size);
    auto end = read_line();
    if (end != "END")
      throw std::runtime_error("memcached: expected END, got: " + end);
    return data;
  }

  /// Sends one raw command line (CRLF added); the reply's first line.
  std::string command(const std::string& line) {
    send_all(line + "\r\n");
    return read_line();
  }

  /// One reply line without its CRLF; throws on timeout or a closed
  /// connection.
  std::string read_line() {
    for (;;) {
      auto pos = buffer_.find("\r\n");
      if (pos != std::string::npos) {
        auto line = buffer_.substr(0, pos);
        buffer_.erase(0, pos + 2);
        return line;
      }
      receive_some();
    }
  }

private:
  std::string read_exact(size_t n) {
    while (buffer_.size() < n)
      receive_some();
    auto out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
  }

  void receive_some() {
    char chunk[4096];
    for (;;) {
      auto n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n > 0) {
        buffer_.append(chunk, static_cast<size_t>(n));
        return;
      }
      if (n == 0)
        throw std::runtime_error("memcached: connection closed");
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        throw std::runtime_error("memcached: no reply within "
                                 + std::to_string(timeout_.count()) + "ms");
      fail("recv");
    }
  }

  void send_all(const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      auto n = ::send(fd_, data.data() + done, data.size() - done,
                      MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        fail("send");
      done += static_cast<size_t>(n);
    }
  }

  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("memcached client: " + what + ": "
                             + std::strerror(errno));
  }

  [[noreturn]] void fail_and_close(const std::string& what) {
    auto err = errno;
    ::close(fd_);
    fd_ = -1;
    errno = err;
    fail(what);
  }

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
};

/// One login attempt on a fresh connection, and — when memcached accepted
/// it — proof that the session works: a set and a get of a key.
struct memcached_login {
  /// memcached's reply to the auth command.
  std::string auth_reply;
  /// Set only when accepted: the session stored a value and read it back.
  bool session_works = false;

  bool accepted() const {
    return auth_reply == memcached_auth_ok;
  }

  bool refused() const {
    return auth_reply == memcached_auth_refused;
  }
};

inline memcached_login try_login(uint16_t port, const std::string& user,
                                 const std::string& password) {
  memcached_client client{port};
  memcached_login out;
  out.auth_reply = client.authenticate(user, password);
  if (out.accepted()) {
    auto value = "session of " + user;
    out.session_works = client.set("mcfg_probe", value) == "STORED"
                        && client.get("mcfg_probe") == value;
  }
  return out;
}

} // namespace mcfg::test
