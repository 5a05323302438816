#pragma once
// What a refresh is: how a file's consumer is told to re-read it, as
// node.yaml's `refresh` says (node_config parses it; refresh_actions carries
// it out), and how to check afterwards that the consumer took the file
// (`verify`, consumer_check.hpp).
#include <chrono>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <caf/timespan.hpp>

namespace mcfg {

/// Refresh by sending `signal` to the pid written in `pidfile`.
struct refresh_signal {
  int signal = 0;
  /// Canonical name, e.g. "SIGHUP".
  std::string name;
  /// Absolute.
  std::string pidfile;
  /// When set (`expect: memcached`), the pid is signalled only if its
  /// /proc/PID/comm, and its executable's name where readable, is this.
  std::string expect;
};

/// Refresh by running a command (no shell); argv[0] is looked up in PATH
/// when it has no '/'.
struct refresh_command {
  std::vector<std::string> argv;
};

/// No refresh: the consumer reads the file by itself.
struct refresh_none {};

using refresh_spec
  = std::variant<refresh_none, refresh_signal, refresh_command>;

/// After a refresh, prove that memcached enforces the file it was told to
/// re-read, by trying its ASCII authentication (node.yaml `refresh: {...,
/// verify: {memcached: "HOST:PORT", timeout: 5s}}`). The probe speaks plain
/// TCP, never TLS: meant for a memcached on loopback. Off loopback, the
/// passwords the probe tries cross the network in clear.
struct refresh_verify {
  /// The module whose file the probe understands: memcached's auth file
  /// (`-Y`). node.yaml refuses `verify` on any other module's file.
  static constexpr std::string_view module = "memcached_passwords";
  /// Bounds of `timeout`: at least a couple of the check's 50 ms runs, and
  /// short enough that a sync is not held for ever. Under a second is
  /// allowed but seldom enough: memcached re-reads its file on a
  /// once-a-second tick after the signal.
  static constexpr caf::timespan min_timeout = std::chrono::milliseconds(100);
  static constexpr caf::timespan max_timeout = std::chrono::minutes(10);
  /// Where memcached listens: "host:port", an IPv6 host in brackets
  /// ("[::1]:11211"), a host name as written ("localhost:11211").
  std::string memcached;
  /// From the refresh until the version is reported as not confirmed
  /// (verify_settings::timeout).
  caf::timespan timeout = std::chrono::seconds(5);
};

} // namespace mcfg
