#pragma once
// A raw HTTP/1.1 client for the control API's end-to-end tests: it sends
// exactly the bytes it is given (well-formed or not) over a Unix socket or
// to 127.0.0.1, and reads until the server closes. Every socket operation
// is bounded by a timeout, so a test can fail but never hang.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

namespace mcfg::test {

/// Where the node listens: a Unix socket path, or a loopback TCP port.
struct http_target {
  std::string unix_path;
  uint16_t port = 0;
};

/// A connected socket (or fd -1 when the connect failed), closed on scope
/// exit.
class http_socket {
public:
  http_socket(const http_target& to, std::chrono::milliseconds timeout) {
    if (!to.unix_path.empty()) {
      fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, to.unix_path.c_str(),
                   sizeof(addr.sun_path) - 1);
      connect(reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    } else {
      fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(to.port);
      connect(reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    }
    if (fd_ < 0)
      return;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }

  ~http_socket() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  http_socket(const http_socket&) = delete;
  http_socket& operator=(const http_socket&) = delete;

  bool connected() const {
    return fd_ >= 0;
  }

  int fd() const {
    return fd_;
  }

  /// Whether every byte went out.
  bool send(const std::string& bytes) {
    size_t done = 0;
    while (fd_ >= 0 && done < bytes.size()) {
      auto n = ::send(fd_, bytes.data() + done, bytes.size() - done,
                      MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      done += static_cast<size_t>(n);
    }
    return fd_ >= 0;
  }

  /// Everything until the server closes (or the timeout passes).
  std::string receive_all() {
    std::string out;
    char buf[4096];
    while (fd_ >= 0) {
      auto n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0)
        break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

private:
  void connect(sockaddr* addr, socklen_t len) {
    if (fd_ >= 0 && ::connect(fd_, addr, len) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

  int fd_ = -1;
};

struct http_reply {
  /// 0 when nothing (or no status line) came back.
  int status = 0;
  std::string headers;
  std::string body;
  /// Everything received.
  std::string raw;
};

inline http_reply parse_http_reply(std::string raw) {
  http_reply out;
  out.raw = std::move(raw);
  if (out.raw.rfind("HTTP/1.", 0) != 0 || out.raw.size() < 12)
    return out;
  out.status = std::atoi(out.raw.substr(9, 3).c_str());
  auto end = out.raw.find("\r\n\r\n");
  out.headers = out.raw.substr(0, end);
  if (end != std::string::npos)
    out.body = out.raw.substr(end + 4);
  return out;
}

/// Sends `bytes` as they are and reads the answer.
inline http_reply
raw_exchange(const http_target& to, const std::string& bytes,
             std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  http_socket s{to, timeout};
  if (!s.connected() || !s.send(bytes))
    return {};
  return parse_http_reply(s.receive_all());
}

/// A well-formed request, with an Authorization header when `token` is set.
inline std::string http_request_bytes(const std::string& method,
                                      const std::string& path,
                                      const std::string& body = {},
                                      const std::string& token = {}) {
  std::string out = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n";
  if (!token.empty())
    out += "Authorization: Bearer " + token + "\r\n";
  if (method == "POST" || !body.empty())
    out += "Content-Type: application/json\r\nContent-Length: "
           + std::to_string(body.size()) + "\r\n";
  return out + "\r\n" + body;
}

inline http_reply http_call(const http_target& to, const std::string& method,
                            const std::string& path,
                            const std::string& body = {},
                            const std::string& token = {}) {
  return raw_exchange(to, http_request_bytes(method, path, body, token));
}

} // namespace mcfg::test
