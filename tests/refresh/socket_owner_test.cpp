// Who owns the other end of a local TCP connection (refresh/detail/
// socket_owner): the rows of /proc/net/tcp read right, and a real loopback
// connection's peer found with this process's uid.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "memcached_cfg/refresh/detail/socket_owner.hpp"

using namespace mcfg::detail;

namespace {

// Two rows of /proc/net/tcp as Linux 6 prints them: a listener on
// 127.0.0.1:11499 (uid 104) and a connection to it from port 40000.
constexpr const char* table
  = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
    "retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:2CEB 00000000:0000 0A 00000000:00000000 00:00000000 "
    "00000000   104        0 31337 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0100007F:2CEB 0100007F:9C40 01 00000000:00000000 00:00000000 "
    "00000000   104        0 31338 1 0000000000000000 20 4 30 10 -1\n";

} // namespace

TEST_CASE("socket owner: the uid of the row with both addresses, and "
          "nothing for a row that is not there or is malformed") {
  CHECK(find_socket_uid(table, "0100007F:2CEB", "0100007F:9C40") == 104u);
  CHECK(find_socket_uid(table, "0100007F:2CEB", "00000000:0000") == 104u);
  CHECK_FALSE(find_socket_uid(table, "0100007F:2CEC", "0100007F:9C40"));
  CHECK_FALSE(find_socket_uid(table, "0100007F:9C40", "0100007F:2CEB"));
  CHECK_FALSE(find_socket_uid("   0: 0100007F:2CEB 0100007F:9C40 01 x y z\n",
                              "0100007F:2CEB", "0100007F:9C40"));
  CHECK_FALSE(find_socket_uid("   0: 0100007F:2CEB 0100007F:9C40 01 a b c "
                              "-5 0 1\n",
                              "0100007F:2CEB", "0100007F:9C40"));
  CHECK_FALSE(find_socket_uid("", "0100007F:2CEB", "0100007F:9C40"));
}

TEST_CASE("socket owner: an address in the kernel's hex form") {
  sockaddr_storage a{};
  auto& in = reinterpret_cast<sockaddr_in&>(a);
  in.sin_family = AF_INET;
  in.sin_port = htons(11499);
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(proc_net_address(a) == "0100007F:2CEB");
  sockaddr_storage none{};
  none.ss_family = AF_UNIX;
  CHECK(proc_net_address(none).empty());
}

TEST_CASE("socket owner: a loopback connection's other end is this "
          "process's, with its uid") {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
          == 0);
  REQUIRE(::listen(listener, 1) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len)
          == 0);
  int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(client >= 0);
  REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
          == 0);
  int accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(accepted >= 0);
  CHECK(peer_socket_uid(client) == ::geteuid());
  ::close(accepted);
  ::close(client);
  ::close(listener);
  CHECK_FALSE(peer_socket_uid(-1));
}
