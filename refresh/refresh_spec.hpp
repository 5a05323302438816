#pragma once
// What a refresh is: how a file's consumer is told to re-read it, as
// node.yaml's `refresh` says (node_config parses it; refresh_actions carries
// it out).
#include <string>
#include <variant>
#include <vector>

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

} // namespace mcfg
