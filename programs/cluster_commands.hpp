#pragma once
// mcfgctl's commands for a cluster whose source of truth is etcd
// (ARCHITECTURE.md §6). They talk to etcd itself, not to a node: plain
// blocking code on the etcd client. Each returns the exit code
// (command_line.hpp): exit_ok done, exit_failed not done (invalid input,
// nodes that did not converge, etcd unreachable).
// Output goes to `out`, problems to `err`; a password never appears in
// either unless `export --show-secrets` asks for them.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "memcached_cfg/etcd/client.hpp"
#include "memcached_cfg/messages/result.hpp"
#include "memcached_cfg/node/node_config.hpp"

namespace mcfg {

struct cluster_target {
  etcd::client_options client;
  std::string prefix = "/memcached_cfg/";
  /// node.yaml's files, when the settings came from one: import checks
  /// the source against their modules; without, against every module.
  std::optional<node_config> node;
};

/// Validates the YAML source at `path` exactly as a node's file backend
/// does and makes `<prefix>users/` hold it, in one transaction: users not in
/// the file are deleted, changed ones written. Prints the revision that
/// holds the file's users. An invalid file changes nothing. The transaction
/// holds only if no key under `<prefix>users/` was created, changed or
/// deleted since the read: otherwise nothing is written and it returns 1,
/// asking to try again. `before_commit`, when set, runs between the read
/// and the transaction (for tests: a concurrent writer).
int cluster_import(const cluster_target& t, const std::string& path,
                   std::ostream& out, std::ostream& err,
                   const std::function<void()>& before_commit = {});

/// Prints `<prefix>users/` at the newest revision as a source YAML;
/// passwords masked unless `show_secrets`.
int cluster_export(const cluster_target& t, bool show_secrets,
                   std::ostream& out, std::ostream& err);

/// Prints every registered node: the revision its files hold, whether that
/// is the current source, healthy or not.
int cluster_status(const cluster_target& t, std::ostream& out,
                   std::ostream& err);

/// The nodes a sync still waits for, each with why ("holds revision 41").
using awaited_nodes = std::map<std::string, std::string>;

/// Waits until every node registered when it starts (and any that registers
/// meanwhile) holds `revision` (default: the newest) or a later one with
/// its refreshes through; names the nodes that did not within `timeout`
/// and returns 1. It looks again every 100 ms; `on_round`, when set, hears
/// after each look that found nodes missing which they are (progress).
int cluster_sync(
  const cluster_target& t, std::optional<int64_t> revision,
  std::chrono::milliseconds timeout, std::ostream& out, std::ostream& err,
  const std::function<void(const awaited_nodes&)>& on_round = {});

/// Where mcfgctl finds etcd: node.yaml's source.etcd (`config`), or the
/// flags that say the same (`endpoints` and the rest).
struct cluster_flags {
  std::string config;
  std::vector<std::string> endpoints;
  std::string prefix;
  std::string user;
  std::string password_file;
  std::string cacert;
  std::string cert;
  std::string key;
};

/// The target `flags` name, or why there is none (a node.yaml whose source
/// is a file, a bad prefix, a password file not private to its owner).
result<cluster_target> cluster_target_of(const cluster_flags& flags);

} // namespace mcfg
