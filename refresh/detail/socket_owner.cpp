#include "memcached_cfg/refresh/detail/socket_owner.hpp"
#include "memcached_cfg/refresh/detail/unique_fd.hpp"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

namespace mcfg::detail {

std::string proc_net_address(const sockaddr_storage& a) {
  char buf[64];
  if (a.ss_family == AF_INET) {
    auto& in = reinterpret_cast<const sockaddr_in&>(a);
    std::snprintf(buf, sizeof(buf), "%08X:%04X",
                  static_cast<unsigned>(in.sin_addr.s_addr),
                  static_cast<unsigned>(ntohs(in.sin_port)));
    return buf;
  }
  if (a.ss_family == AF_INET6) {
    auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
    uint32_t words[4];
    std::memcpy(words, &in6.sin6_addr, sizeof(words));
    std::snprintf(buf, sizeof(buf), "%08X%08X%08X%08X:%04X",
                  static_cast<unsigned>(words[0]),
                  static_cast<unsigned>(words[1]),
                  static_cast<unsigned>(words[2]),
                  static_cast<unsigned>(words[3]),
                  static_cast<unsigned>(ntohs(in6.sin6_port)));
    return buf;
  }
  return {};
}

std::optional<uid_t> find_socket_uid(std::string_view table,
                                     std::string_view local,
                                     std::string_view remote) {
  // "sl local_address rem_address st tx:rx tr:when retrnsmt uid ...": find
  // the row by its two addresses in one search (the table may hold
  // thousands of rows), then read only that row's fields.
  std::string needle = ": ";
  needle.append(local).append(" ").append(remote).append(" ");
  auto at = table.find(needle);
  if (at == std::string_view::npos)
    return std::nullopt;
  auto end = table.find('\n', at);
  std::istringstream fields{std::string{table.substr(at + 2, end - at - 2)}};
  std::vector<std::string> f{std::istream_iterator<std::string>{fields},
                             std::istream_iterator<std::string>{}};
  // local remote st tx:rx tr:when retrnsmt uid
  if (f.size() < 7 || f[6].empty() || f[6].size() > 10
      || f[6].find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  auto uid = std::stoull(f[6]);
  if (uid > static_cast<uid_t>(-1))
    return std::nullopt;
  return static_cast<uid_t>(uid);
}

namespace {

/// The uid of the TCP socket with local address `local` and remote
/// `remote`, asked of the kernel by exact lookup (NETLINK_SOCK_DIAG): one
/// hash lookup, however many sockets the host has. Nothing when the kernel
/// does not answer (no such socket, netlink not allowed).
std::optional<uid_t> diag_uid(const sockaddr_storage& local,
                              const sockaddr_storage& remote) {
  struct request {
    nlmsghdr header;
    inet_diag_req_v2 diag;
  } req{};
  req.header.nlmsg_len = sizeof(req);
  req.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.header.nlmsg_flags = NLM_F_REQUEST;
  req.diag.sdiag_family = static_cast<uint8_t>(local.ss_family);
  req.diag.sdiag_protocol = IPPROTO_TCP;
  req.diag.idiag_states = ~0u;
  req.diag.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  req.diag.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (local.ss_family == AF_INET) {
    auto& l = reinterpret_cast<const sockaddr_in&>(local);
    auto& r = reinterpret_cast<const sockaddr_in&>(remote);
    req.diag.id.idiag_sport = l.sin_port;
    req.diag.id.idiag_dport = r.sin_port;
    std::memcpy(req.diag.id.idiag_src, &l.sin_addr, sizeof(l.sin_addr));
    std::memcpy(req.diag.id.idiag_dst, &r.sin_addr, sizeof(r.sin_addr));
  } else if (local.ss_family == AF_INET6) {
    auto& l = reinterpret_cast<const sockaddr_in6&>(local);
    auto& r = reinterpret_cast<const sockaddr_in6&>(remote);
    req.diag.id.idiag_sport = l.sin6_port;
    req.diag.id.idiag_dport = r.sin6_port;
    std::memcpy(req.diag.id.idiag_src, &l.sin6_addr, sizeof(l.sin6_addr));
    std::memcpy(req.diag.id.idiag_dst, &r.sin6_addr, sizeof(r.sin6_addr));
  } else {
    return std::nullopt;
  }
  unique_fd nl{
    ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)};
  if (nl.get() < 0)
    return std::nullopt;
  timeval timeout{0, 200'000};
  ::setsockopt(nl.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(nl.get(), &req, sizeof(req), 0,
               reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel))
      != static_cast<ssize_t>(sizeof(req)))
    return std::nullopt;
  alignas(nlmsghdr) char buf[8192];
  auto n = ::recv(nl.get(), buf, sizeof(buf), 0);
  if (n < static_cast<ssize_t>(sizeof(nlmsghdr)))
    return std::nullopt;
  auto* h = reinterpret_cast<nlmsghdr*>(buf);
  if (!NLMSG_OK(h, static_cast<unsigned>(n))
      || h->nlmsg_type != SOCK_DIAG_BY_FAMILY
      || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg)))
    return std::nullopt; // NLMSG_ERROR: no such socket, or not allowed
  auto* msg = reinterpret_cast<inet_diag_msg*>(NLMSG_DATA(h));
  return static_cast<uid_t>(msg->idiag_uid);
}

/// The same from /proc/net/tcp(6): every socket of the host is formatted
/// (milliseconds with thousands of them), so only where netlink is not.
std::optional<uid_t> proc_net_uid(const sockaddr_storage& local,
                                  const sockaddr_storage& remote) {
  auto l = proc_net_address(local);
  auto r = proc_net_address(remote);
  if (l.empty() || r.empty())
    return std::nullopt;
  auto table = local.ss_family == AF_INET6 ? "/proc/net/tcp6" : "/proc/net/tcp";
  std::ifstream in{table};
  std::string text{std::istreambuf_iterator<char>{in},
                   std::istreambuf_iterator<char>{}};
  return find_socket_uid(text, l, r);
}

} // namespace

std::optional<uid_t> peer_socket_uid(int fd) {
  sockaddr_storage mine{};
  sockaddr_storage theirs{};
  socklen_t mine_len = sizeof(mine);
  socklen_t theirs_len = sizeof(theirs);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&mine), &mine_len) != 0
      || ::getpeername(fd, reinterpret_cast<sockaddr*>(&theirs), &theirs_len)
           != 0)
    return std::nullopt;
  // Their socket: local address theirs, remote address mine.
  if (auto uid = diag_uid(theirs, mine))
    return uid;
  return proc_net_uid(theirs, mine);
}

} // namespace mcfg::detail
