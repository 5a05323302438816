#pragma once
// Status of the node's other actors: the source of truth and the refresher.
// Never a secret: errors name files, lines and keys, not values.
#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <caf/timestamp.hpp>

#include "memcached_cfg/messages/writer_status.hpp"

namespace mcfg {

struct source_status {
  /// Where versions come from: "file" or "etcd".
  std::string backend = "file";
  /// The file's path, or "etcd <endpoints> <prefix>".
  std::string path;
  /// The version published last: bumped at every accepted edit that changed
  /// the source.
  uint64_t version = 0;
  /// How edits are noticed: "inotify", or "polling every 100ms" where
  /// inotify is unavailable.
  std::string watching;
  /// The last refused edit's error (file:line:column: key: message); empty
  /// once a later edit is accepted.
  std::string last_error;
  uint64_t refused_edits = 0;
  /// Why the source cannot be followed as it should, while that lasts (the
  /// files keep the last good version; /healthz reports it): "source
  /// unreachable since <time>: <why>" while no etcd member answers, or
  /// "source watch stopped: <why>; polling every <interval> instead" once
  /// the file watcher's thread has ended. Empty otherwise.
  std::string unreachable;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, source_status& x) {
  return f(caf::meta::type_name("source_status"), x.backend, x.path, x.version,
           x.watching, x.last_error, x.refused_edits, x.unreachable);
}

struct refresh_status {
  std::string path;
  bool pending = false; ///< a refresh is owed or running
  bool running = false; ///< its action runs right now
  uint32_t failures = 0; ///< consecutive failed refreshes
  std::string last_error;
  uint64_t refreshes = 0; ///< successful refreshes
  /// Until the retry of a failed refresh; negative when none is armed.
  caf::timespan next_retry_in{-1};
  /// The version of the last rename this refresher was told of (0: none
  /// since it started).
  uint64_t version = 0;
  /// Whether the file has a consumer check (node.yaml `verify`).
  bool verifies = false;
  /// The newest version the consumer was shown to enforce (0: none yet).
  uint64_t confirmed_version = 0;
  /// "none" (no check), "verifying", "confirmed", "unverifiable" or
  /// "failed": the check's state for `version`.
  std::string verify_state = "none";
  /// What the check found last: how the consumer still disagrees, why it
  /// cannot be verified or why it failed; names users, never a password.
  std::string verify_detail;
  /// How long the check of `version` has run (negative when none runs).
  caf::timespan verifying_for{-1};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, refresh_status& x) {
  return f(caf::meta::type_name("refresh_status"), x.path, x.pending, x.running,
           x.failures, x.last_error, x.refreshes, x.next_retry_in, x.version,
           x.verifies, x.confirmed_version, x.verify_state, x.verify_detail,
           x.verifying_for);
}

/// What a sync waited for on one file.
enum class sync_basis : uint8_t {
  /// The file holds the version and its refresh went through (no check).
  applied,
  /// The consumer was shown to enforce the version (or a later one).
  confirmed,
  /// The file holds the version, but no probe can tell it from what the
  /// consumer enforced before (e.g. only roles changed).
  unverifiable,
};

/// "applied", "confirmed", "unverifiable".
const char* to_string(sync_basis x);

struct file_sync {
  std::string path;
  sync_basis basis = sync_basis::applied;
  /// The version the sync asked for.
  uint64_t version = 0;
  /// For `unverifiable`: why; empty otherwise. Never a password.
  std::string note;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, file_sync& x) {
  return f(caf::meta::type_name("file_sync"), x.path, x.basis, x.version,
           x.note);
}

/// What `mcfgctl status` prints.
struct node_status {
  source_status source;
  std::vector<writer_status> files;
  std::vector<refresh_status> refreshes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_status& x) {
  return f(caf::meta::type_name("node_status"), x.source, x.files, x.refreshes);
}

} // namespace mcfg
