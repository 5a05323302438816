#pragma once
// memcached_cfg: the generic config-file writer (ARCHITECTURE.md §3), a CAF
// actor modelled on ns_server's gen_server of that name. It keeps one file in
// step with a source of truth through a callback module (writer_module):
// every change is written atomically (temp file, fsync, rename, directory
// fsync), a failed attempt is retried every `retry_interval` with fresh
// content, and once attempts keep failing for `deadline` since the last
// change the writer exits, for its supervisor to restart it from fresh state.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

#include <caf/actor_clock.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "memcached_cfg/actors/file_port.hpp"
#include "memcached_cfg/actors/io_pool.hpp"
#include "memcached_cfg/actors/writer_module.hpp"
#include "memcached_cfg/messages/atoms.hpp"
#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/messages/writer_status.hpp"

namespace mcfg {

/// What clients of a writer may send it; anything else is a compile error.
using memcached_cfg_actor = caf::typed_actor<
  // The source of truth has a new version: applied whole, then written.
  caf::reacts_to<change_atom, config_update>,
  // Answered once the file holds the latest version this writer knows and no
  // write is owed: at once when idle, else after the next successful write;
  // an error when the content is refused or the writer exits first.
  caf::replies_to<sync_atom>::with<caf::ok_atom>,
  // Answered once the file holds `version` or a later one: at once when it
  // already does. Same errors as above.
  caf::replies_to<sync_atom, uint64_t>::with<caf::ok_atom>,
  // Rewrite the file from unchanged state.
  caf::reacts_to<reload_atom>,
  // Rebuild the state from a fresh snapshot, then write.
  caf::reacts_to<reset_atom>,
  caf::replies_to<status_atom>::with<writer_status>>;

/// The file-level settings of one writer.
struct writer_settings {
  /// The file kept in step.
  std::string path;
  /// Where content is prepared before the rename; empty means path + ".tmp".
  std::string tmp_path;
  caf::timespan retry_interval = std::chrono::milliseconds(100);
  /// How long attempts may keep failing since the last change.
  caf::timespan deadline = std::chrono::seconds(10);
  /// Coalescing a burst. A change to a writer whose last attempt saw no
  /// other work arrive is written at once. After an attempt during which
  /// more work arrived (a burst: each write would be stale at once), the
  /// next one waits until no change has come for `coalesce_quiet`, but no
  /// longer than `coalesce_max` since the write became owed, so that a
  /// steady stream is still written. A zero `coalesce_quiet` writes at once.
  caf::timespan coalesce_quiet = std::chrono::milliseconds(5);
  caf::timespan coalesce_max = std::chrono::seconds(1);
  mode_t mode = 0600;
  /// fsync the file and its directory (off only to measure what it costs).
  bool durable = true;

  std::string effective_tmp_path() const {
    return tmp_path.empty() ? path + ".tmp" : tmp_path;
  }
};

/// What one file's writer remembers across its incarnations, so that a fault
/// which outlives them surfaces: the embedder hands the same record to every
/// incarnation of one file's writer (through its start function). No lock
/// for the fields: only one incarnation runs at a time, and the next one
/// starts only after the previous one's exit (a supervisor restarts on the
/// down message).
struct writer_history {
  /// Where every pool job of this file's writers runs, one at a time, so
  /// that the file's I/O never overlaps: a job an incarnation gave up on
  /// while its fsync hung finishes (renaming nothing) before the next
  /// incarnation's job touches the temp file, and those wait holding no
  /// pool thread.
  io_strand io;
  /// Incarnations that gave up since the file was last written.
  uint32_t give_ups = 0;
  /// The first failed attempt since the file was last written (actor clock).
  std::optional<caf::actor_clock::time_point> failing_since;
  /// Why the last incarnation gave up; empty once the file is written.
  std::string last_give_up;
};

/// Everything a writer incarnation is made from. Each incarnation calls
/// `make_module` and `read_snapshot` afresh, so a restart starts clean.
struct writer_spec {
  writer_settings settings;
  std::function<std::unique_ptr<writer_module>()> make_module;
  /// Called once per incarnation with its own handle, before the first
  /// read_snapshot: where the writer subscribes to the source's updates, so
  /// that no version falls between the snapshot and the subscription.
  std::function<void(const memcached_cfg_actor& self)> subscribe;
  /// The whole current source of truth and its version (init and
  /// full_reset). Updates of that version or older are then ignored.
  std::function<versioned_snapshot()> read_snapshot;
  /// The file system; the POSIX port when empty.
  std::shared_ptr<file_port> files;
  /// Tells the consumer to re-read the file, after each successful rename,
  /// with the source version the file now holds. A version that leaves the
  /// file's bytes as they were is not renamed and so not refreshed; a
  /// reload renames the same bytes again and refreshes.
  std::function<void(uint64_t version)> refresh;
  /// Shared by the incarnations of this file's writer; a fresh one when empty.
  std::shared_ptr<writer_history> history;
  /// Where the file's I/O runs (io_pool.hpp): with a pool, each attempt's
  /// steps run there and the writer stays responsive while they do
  /// (status says so, updates coalesce into the next attempt, the deadline
  /// holds even if a step never returns). Empty: inline, on the actor.
  std::shared_ptr<io_pool> pool;
  /// Told the writer's status (as `status` answers it) after every message
  /// that may change it, with the writer's clock time: where an embedder
  /// keeps the status of many writers for readers that must not wait on
  /// one (mcfgd's status_board). Called on the writer's thread; must not
  /// block or throw.
  std::function<void(writer_status, caf::actor_clock::time_point)> publish;
  /// Run on a thread of its own (`caf::detached`) rather than on the
  /// scheduler's workers, so that inline I/O stuck on a slow disk holds up
  /// no other actor. Not needed with a pool.
  bool detached = false;
};

/// Spawns a writer. Its first act is to remove a leftover temp file and write
/// the file from fresh state; its last, on any exit it runs code for (giving
/// up, an exit message, a kill from its supervisor), is to remove its temp
/// file, which may hold the newest secrets.
memcached_cfg_actor spawn_memcached_cfg(caf::actor_system& sys,
                                        writer_spec spec);

/// The same, the writer sharing `spec` rather than holding a copy: for an
/// embedder that starts many incarnations (a supervisor's restarts) or keeps
/// the spec anyway, one copy per file instead of one more per writer. The
/// spec must not change while a writer holds it; one without `files` or
/// `history` is copied to fill them in.
memcached_cfg_actor
spawn_memcached_cfg(caf::actor_system& sys,
                    std::shared_ptr<const writer_spec> spec);

} // namespace mcfg
