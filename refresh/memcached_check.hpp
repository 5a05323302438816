#pragma once
// memcached_check: the consumer_check of a memcached ASCII auth file
// (`memcached -Y FILE`, node.yaml `refresh: {..., verify: {memcached:
// "HOST:PORT"}}`). It proves that memcached enforces the file by logging
// in over memcached's own ASCII protocol: every login the file holds must
// be let in, every login memcached may still hold from an earlier version
// and the file no longer has must be refused (the planning, the parsing of
// the file by memcached's rules and the judging are pure:
// modules/memcached_auth_check.hpp).
//
// Each probe is a fresh TCP connection to HOST:PORT with a 250 ms bound on
// the connect and on each reply. It first sends `version`: only when
// memcached answers `CLIENT_ERROR unauthenticated` (it runs with -Y) does
// the login follow, `set mcfg_probe 0 0 N\r\nUSER PASS\r\n`, which an
// auth-enabled memcached answers without storing anything. A memcached
// without -Y would store that payload as a value; it is never sent one.
//
// The probe speaks plain TCP, never TLS: meant for memcached on loopback.
// Off loopback, the passwords it tries cross the network in clear.
// Passwords go to the socket only: no outcome, diagnosis or exception text
// holds one. Nothing throws out of the check; SIGPIPE is never raised
// (MSG_NOSIGNAL).
#include <memory>
#include <string>

#include "memcached_cfg/refresh/consumer_check.hpp"

namespace mcfg {

/// A check of the memcached listening at `host_port` ("127.0.0.1:11211",
/// "[::1]:11211", "localhost:11211", as parse_memcached_address writes it).
/// `pidfile`, which may be empty, names memcached's pid for diagnose()
/// (whether memcached's user can read the file).
std::unique_ptr<consumer_check> make_memcached_check(std::string host_port,
                                                     std::string pidfile);

} // namespace mcfg
