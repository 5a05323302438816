#pragma once
// node.yaml: what mcfgd maintains and how (ARCHITECTURE.md §5). Loading
// validates everything up front and resolves it into a plain struct; a bad
// configuration gives errors with file, line, column and key, e.g.
//
//   node.yaml:7:13: files[1].mode: expected an octal mode like 0600, got "rw"
//
// The format (defaults shown; relative paths resolve against the folder of
// node.yaml):
//
//   source: cluster.yaml            # required: the source-of-truth YAML,
//                                   # or an etcd cluster (ARCHITECTURE.md §6):
//   # source:
//   #   etcd:
//   #     endpoints: ["http://127.0.0.1:2379"]   # required, http or https
//   #     prefix: /memcached_cfg/                 # must end with '/'
//   #     username: mcfgd                         # optional, with
//   #     password_file: etcd.pw                  # a 0600 file
//   #     tls: {ca: ca.pem, cert: node.pem, key: node-key.pem}  # optional
//   #     stale_after: 10s        # no proof of freshness this long: doubt
//   name: node1                     # this node in the cluster (default:
//                                   # the host name)
//   retry:
//     interval: 100ms               # between failed write attempts
//     deadline: 10s                 # failing this long since a change: exit
//   supervisor:
//     intensity: 3                  # more than 3 restarts ...
//     period: 10s                   # ... within 10 s: give up
//   files:                          # required, at least one
//     - module: <name>              # a module of modules/module_table.cpp
//       path: run/memcached.auth
//       mode: "0600"                # octal; no group/other write, nor
//                                   # what the module forbids (passwords:
//                                   # world read)
//       refresh:                    # optional: either a signal (HUP,
//         signal: HUP               # SIGHUP, USR1, ...) to the pid in
//         pidfile: run/memcached.pid  # the pidfile, or a command (argv,
//       # refresh: {command: [systemctl, reload, memcached]}   # no shell)
//       # with a signal, `expect: memcached` (optional) signals the pid only
//       # if it runs that program
//       # With either, `verify` (optional, memcached_passwords files only)
//       # proves after each refresh that memcached enforces the new file:
//       #   verify: {memcached: "127.0.0.1:11211", timeout: 5s}
//       # `memcached` is required, "host:port" like control.listen (host
//       # 127.0.0.1 when left out, port 1 to 65535); `timeout` (100ms to
//       # 10m) bounds how long a version may take to be confirmed. The
//       # probe tries memcached's ASCII authentication over plain TCP, no
//       # TLS: name a loopback address, since off loopback the passwords it
//       # tries cross the network in clear.
//   control:                        # the control API (docs/control-api.md)
//     socket: mcfgd.sock            # Unix socket, mode 0600 (0660 with group)
//     group: mcfg-admins            # optional: may use the socket too
//     listen: "127.0.0.1:11311"     # optional TCP; host defaults to 127.0.0.1
//     token_file: control.token     # required with listen: a 0600 file
//     tls: {cert: c.pem, key: k.pem}  # required when listen is not loopback
//   log_level: info                 # error | warning | info | debug
//   allow_empty_users: false        # true: a source with no users is
//                                   # accepted (memcached 1.6.18 then lets
//                                   # nobody in; >= 1.6.32 rejects the file)
//
// Durations are an integer and a unit: ns, us, ms, s, m, h (`100ms`, `10s`,
// `2m`, `500us`). The parsers of such values (durations, modes, signals,
// listen addresses) are config_values.hpp's.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <sys/types.h>

#include <caf/timestamp.hpp>

#include "memcached_cfg/etcd/client.hpp"
#include "memcached_cfg/messages/log.hpp"
#include "memcached_cfg/modules/module_table.hpp"
#include "memcached_cfg/node/config_values.hpp"
#include "memcached_cfg/refresh/refresh_spec.hpp"
#include "memcached_cfg/source/located_error.hpp"

namespace mcfg {

/// One maintained file.
struct file_config {
  /// The callback module that renders it (never null once loaded).
  const module_entry* module = nullptr;
  /// Absolute and lexically normal.
  std::string path;
  mode_t mode = 0600;
  refresh_spec refresh;
  /// `refresh.verify`: set only with a refresh, on a memcached_passwords
  /// file.
  std::optional<refresh_verify> verify;
};

/// The source when it is an etcd cluster.
struct etcd_source_config {
  /// Client URLs, http:// or https://.
  std::vector<std::string> endpoints;
  /// Users live under `<prefix>users/`, nodes under `<prefix>nodes/`.
  std::string prefix = "/memcached_cfg/";
  /// Empty: no authentication.
  std::string username;
  /// Absolute; set with `username`. Read when the node starts.
  std::string password_file;
  /// Set with `tls`: absolute paths; `ca` empty: the system's CAs; `cert`
  /// and `key` both or neither.
  std::optional<etcd::tls_files> tls;
  /// `stale_after`: how long the node may go without proof that its users
  /// are the cluster's newest before it fails over and says so.
  std::chrono::milliseconds stale_after = std::chrono::seconds(10);
};

/// HTTPS for control.listen: the server's certificate and key, PEM files,
/// absolute.
struct server_tls_files {
  std::string cert;
  std::string key;
};

/// The control API's sockets and who may use them.
struct control_config {
  /// The Unix socket, absolute; default mcfgd.sock in node.yaml's folder.
  std::string socket;
  /// control.group, resolved: its members may use the socket too.
  std::optional<gid_t> group;
  /// control.listen: TCP as well.
  std::optional<listen_address> listen;
  /// The bearer token's file, absolute; set exactly when `listen` is.
  std::string token_file;
  /// Set whenever `listen` is not a loopback address.
  std::optional<server_tls_files> tls;
};

/// The lock file mcfgd keeps in each folder it writes files to, with one
/// byte locked per file (programs/node_locks.cpp, lock_files). No maintained
/// file may bear this name.
inline constexpr const char folder_lock_name[] = "mcfgd.lock";

/// The folder lock of the file at `path`: mcfgd.lock beside it.
inline std::string folder_lock_of(const std::string& path) {
  return path.substr(0, path.rfind('/') + 1) + folder_lock_name;
}

/// Everything in node.yaml, resolved: absolute paths, durations as
/// caf::timespan, defaults filled in.
struct node_config {
  /// node.yaml itself, absolute.
  std::string config_file;
  /// The source-of-truth YAML, absolute; empty when the source is etcd.
  std::string source;
  /// Set when the source is an etcd cluster.
  std::optional<etcd_source_config> etcd;
  /// This node's name in the cluster: `name`, or the host name.
  std::string name;
  caf::timespan retry_interval = std::chrono::milliseconds(100);
  caf::timespan retry_deadline = std::chrono::seconds(10);
  size_t supervisor_intensity = 3;
  caf::timespan supervisor_period = std::chrono::seconds(10);
  /// `io_threads`: the most threads the files' writes (temp file, fsync,
  /// rename) run on; the pool has one per file up to this many, so that a
  /// few files on a hung disk leave threads for the rest.
  size_t io_threads = 16;
  std::vector<file_config> files;
  control_config control;
  log::level log_level = log::level::info;
  /// Whether a source with no users is accepted; refused by default, since
  /// memcached would then let nobody in (or reject the file).
  bool allow_empty_users = false;
};

/// The outcome of loading node.yaml: a config, or at least one error.
using node_config_result = load_result<node_config>;

/// Reads and validates the node configuration at `path`. A missing or
/// unreadable file gives one error naming the path and the OS error.
node_config_result load_node_config(const std::string& path);

/// Validates YAML text as if read from `path`: `path` names the file in
/// errors and its folder anchors relative paths (made absolute against the
/// working directory first).
node_config_result parse_node_config(std::string_view text,
                                     const std::string& path);

} // namespace mcfg
