#pragma once
// Wiring mcfgd's supervision tree (ARCHITECTURE.md §5) from a validated
// node.yaml: which module each file uses, how the source is validated for
// them, and the root supervisor's children in start order:
//   file_store, refresher, files (a supervisor: one memcached_cfg writer
//   per file).
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "memcached_cfg/actors/memcached_cfg.hpp"
#include "memcached_cfg/etcd/client.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/source_settings.hpp"
#include "memcached_cfg/node/status_board.hpp"
#include "memcached_cfg/source/etcd_follower.hpp"
#include "memcached_cfg/source/etcd_store.hpp"
#include "memcached_cfg/source/source_document.hpp"
#include "memcached_cfg/source/source_of_truth.hpp"
#include "memcached_cfg/supervision/child_spec.hpp"

namespace mcfg {

/// Registry names of the node's children.
constexpr auto store_child_id = caf::atom("store");
constexpr auto refresher_child_id = caf::atom("refresher");
constexpr auto files_child_id = caf::atom("files");
/// Writers are named file1, file2, ... in node.yaml order.
sup::child_id writer_child_id(size_t index);

/// The source node.yaml names, read and validated once before the tree
/// starts: the document, and for an etcd source its shared parts.
struct node_source {
  source_document doc;
  std::shared_ptr<etcd_source> etcd;
};

/// What load_node_source found: the source, or why not.
struct node_source_read {
  load_result<node_source> loaded;
  /// The errors say only that no etcd member answered (all down, no
  /// leader, timeouts): that may pass, so it is not bad configuration. A
  /// refused password, a missing permission, a TLS file that cannot be
  /// read, a password file that is not 0600 or users that fail validation
  /// can never work as they are, and leave this false.
  bool unreachable = false;
};

/// Reads the source: the file, or (etcd) every user at the newest revision,
/// validated as the files' modules require. Any failure is an error naming
/// the source (never the password). An etcd source is read through `via`
/// when given (so that another thread may cancel() the read), else through
/// a client of its own.
node_source_read load_node_source(const node_config& cfg,
                                  etcd::client* via = nullptr);

/// The shared source of truth, starting from `src` (for etcd, its first
/// version recorded as the revision read).
std::shared_ptr<source_of_truth> make_truth(const node_source& src);

/// The pool node_children's writers share for `cfg`'s files: one thread per
/// file up to node.yaml's `io_threads` (default 16). More would mostly add
/// threads waiting on one disk (bench `scale`).
std::shared_ptr<io_pool> make_io_pool(const node_config& cfg);

/// The board `cfg`'s writers (in node.yaml order) and refresher publish to.
std::shared_ptr<status_board> make_status_board(const node_config& cfg);

/// The root supervisor's children, in start order: the store for `src`'s
/// backend, the refresher, the files, whose I/O runs on `pool`, each
/// publishing its status to `board` (when given). Setting `stopping` kills
/// a refresh command under way, so that a stop does not wait for it.
std::vector<sup::child_spec>
node_children(const node_config& cfg, std::shared_ptr<source_of_truth> truth,
              const node_source& src, std::shared_ptr<io_pool> pool,
              std::shared_ptr<status_board> board,
              std::shared_ptr<const std::atomic<bool>> stopping = {});

/// The root supervisor's flags from node.yaml.
sup::supervisor_flags root_flags(const node_config& cfg);

/// The `files` supervisor: one writer per file (ids file1, file2, ...) on
/// `files`, each refreshed through the refresher registered as
/// refresher_child_id, and publishing its status to `board` (when given) in
/// the slot of its file. The writers run on the scheduler; with a `pool`
/// (mcfgd) their I/O runs there, so that an fsync stuck on one file's disk
/// holds up no actor, without, inline (the test_coordinator's tests).
sup::child_spec files_child(const node_config& cfg,
                            std::shared_ptr<source_of_truth> truth,
                            std::shared_ptr<file_port> files,
                            std::shared_ptr<io_pool> pool,
                            std::shared_ptr<status_board> board = {});

/// The `files` supervisor's flags: node.yaml's period, and a budget that
/// holds every restart a write fault shared by all files can cause in one
/// period.
sup::supervisor_flags files_flags(const node_config& cfg);

/// Re-reads the source and rewrites every file (SIGHUP, as `mcfgctl
/// reload`): asks the live store and writers, without waiting.
void reload_all(caf::actor_system& sys, const node_config& cfg);

} // namespace mcfg
