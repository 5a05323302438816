#include "memcached_cfg/refresh/detail/socket_owner.hpp"

#include <netinet/in.h>

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
  std::istringstream lines{std::string{table}};
  std::string line;
  // "sl local_address rem_address st tx:rx tr:when retrnsmt uid ..."
  while (std::getline(lines, line)) {
    std::istringstream fields{line};
    std::vector<std::string> f{std::istream_iterator<std::string>{fields},
                               std::istream_iterator<std::string>{}};
    if (f.size() < 8 || f[1] != local || f[2] != remote)
      continue;
    if (f[7].empty()
        || f[7].find_first_not_of("0123456789") != std::string::npos
        || f[7].size() > 10)
      return std::nullopt;
    auto uid = std::stoull(f[7]);
    if (uid > static_cast<uid_t>(-1))
      return std::nullopt;
    return static_cast<uid_t>(uid);
  }
  return std::nullopt;
}

std::optional<uid_t> peer_socket_uid(int fd) {
  sockaddr_storage mine{};
  sockaddr_storage theirs{};
  socklen_t mine_len = sizeof(mine);
  socklen_t theirs_len = sizeof(theirs);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&mine), &mine_len) != 0
      || ::getpeername(fd, reinterpret_cast<sockaddr*>(&theirs), &theirs_len)
           != 0)
    return std::nullopt;
  auto local = proc_net_address(theirs); // their socket's local address
  auto remote = proc_net_address(mine);
  if (local.empty() || remote.empty())
    return std::nullopt;
  auto table = theirs.ss_family == AF_INET6 ? "/proc/net/tcp6"
                                            : "/proc/net/tcp";
  std::ifstream in{table};
  std::string text{std::istreambuf_iterator<char>{in},
                   std::istreambuf_iterator<char>{}};
  return find_socket_uid(text, local, remote);
}

} // namespace mcfg::detail
