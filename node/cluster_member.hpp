#pragma once
// A node's membership in an etcd cluster (ARCHITECTURE.md §6): it keeps
// `<prefix>nodes/<name>` under a lease, holding what the node's files hold
// and whether it is healthy, for `mcfgctl cluster status` and `mcfgctl sync
// --cluster`:
//
//   {"name": "node1", "revision": 42, "digest": "<sha256>", "version": 3,
//    "healthy": true, "synced": true}
//
// and, while the node cannot prove its users are the cluster's newest,
// `"healthy": false` and `"source": "source not proven fresh since ..."`.
// `revision` is the etcd revision of the source version every file holds,
// `digest` the digest of its users' keys and mod revisions (so a reader can
// tell whether a later revision holds the same users); `synced`: no file
// owes a write and no refresh is pending. Read from the node's status board
// (no writer is asked) every 100 ms on the registration's own thread;
// written when it changes.
#include <memory>
#include <optional>
#include <string>

#include <caf/fwd.hpp>

#include "memcached_cfg/node/etcd_registration.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/node_tree.hpp"
#include "memcached_cfg/node/status_board.hpp"

namespace mcfg {

class cluster_member {
public:
  cluster_member(caf::actor_system& sys, const node_config& cfg,
                 const node_source& src, std::shared_ptr<source_of_truth> truth,
                 std::shared_ptr<const status_board> board);
  ~cluster_member();
  cluster_member(const cluster_member&) = delete;
  cluster_member& operator=(const cluster_member&) = delete;

  /// The key it keeps.
  const std::string& key() const {
    return key_;
  }

private:
  /// What the files and refreshes on the board say, as of `generation`.
  struct files_summary {
    uint64_t generation = 0;
    std::optional<uint64_t> applied;
    bool healthy = true;
    bool written = true;
    bool refreshed = true;
    std::optional<uint64_t> confirmed;
  };
  files_summary summarize() const;
  std::string describe();

  caf::actor_system& sys_;
  node_config cfg_;
  std::shared_ptr<etcd_source> etcd_;
  std::shared_ptr<source_of_truth> truth_;
  std::shared_ptr<const status_board> board_;
  std::string key_;
  /// The revision and digest last known to be in every file.
  std::optional<etcd_versions::entry> held_;
  /// The revision last known to be enforced by every checked file's
  /// consumer (files with node.yaml `verify`).
  std::optional<int64_t> confirmed_;
  /// The last summary: called from the registration's thread only.
  std::optional<files_summary> summary_;
  std::unique_ptr<etcd::etcd_registration> registration_;
};

} // namespace mcfg
