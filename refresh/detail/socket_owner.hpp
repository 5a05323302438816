#pragma once
// Who is at the other end of a TCP connection on this host. The memcached
// check sends real passwords, so before it does, it asks the kernel who owns
// the socket it reached: any local user can listen on a loopback port that
// memcached left free (stopped, restarting) and answer like memcached.
// /proc/net/tcp and tcp6 list every socket with its owner's uid, readable by
// every user, so this needs no privilege.
#include <sys/socket.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace mcfg::detail {

/// An address as /proc/net/tcp(6) prints it: "0100007F:2CCB" (IPv4, the
/// address as the kernel stores it, then the port), or 32 hex digits and
/// the port for IPv6; empty for another family.
std::string proc_net_address(const sockaddr_storage& a);

/// In the text of /proc/net/tcp or tcp6, the uid of the socket whose local
/// address is `local` and remote address `remote`; nothing when no row
/// matches or the row is malformed.
std::optional<uid_t> find_socket_uid(std::string_view table,
                                     std::string_view local,
                                     std::string_view remote);

/// The uid owning the socket at the other end of the connected TCP socket
/// `fd`, when that end is on this host (in this network namespace);
/// nothing otherwise. Once the server accepted the connection that is the
/// accepting process's uid (accept() makes the socket with its
/// credentials); before, the listener's.
std::optional<uid_t> peer_socket_uid(int fd);

} // namespace mcfg::detail
