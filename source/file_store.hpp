#pragma once
// file_store: the node's source of truth with the file backend
// (ARCHITECTURE.md §5). Loads the source YAML, watches it, and publishes each
// accepted edit as one version to the shared source_of_truth, which sends it
// to the writers. An edit that cannot be read, parsed or validated is refused
// with file, line, column and key in the log and the status; the last good
// version, and so every file, stays.
//
// What counts as a save (the settle rule): the source is read once the
// watcher has reported nothing new about it for a while — `settle_complete`
// (none by default) after the file was renamed into place or closed by its
// writer, and `quiet_period` after any other change (a write, a truncation,
// a delete) — and a read counts only when nothing happened in the watched
// directories while it was made (file_watcher::quiet_since); the bytes read
// are exactly the bytes parsed. So a file written in slow pieces, or
// truncated and then refilled, is read only once its writer is done with it.
// Where inotify is unavailable the file is polled every `poll_interval`, and
// a changed file counts once two polls in a row read the same bytes.
//
// Every read obeys that rule, whoever asks for it. At start (and so at a
// restart) no event has been seen yet: a file modified less than
// `quiet_period` ago (its mtime) is read once that much time has passed
// since. A reload or sync (`mcfgctl sync`, `reload`, SIGHUP) on a quiet
// source is answered at once, as the read gives; one that comes while a
// change is unsettled (an event not yet settled, an event not yet reported,
// a poll not yet confirmed) is held and answered once the source settles
// and is read, with what that read gives. So no request ever reads half a
// save; one made during a save that never ends waits for the caller's
// timeout, or for the store to stop (then answered request_receiver_down).
//
// When the watcher's thread stops (inotify failed), the store says so in its
// status (`unreachable`, and so in /healthz) and polls from then on.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "memcached_cfg/messages/atoms.hpp"
#include "memcached_cfg/messages/node_status.hpp"
#include "memcached_cfg/source/source_document.hpp"
#include "memcached_cfg/source/source_of_truth.hpp"
#include "memcached_cfg/source/store.hpp"

namespace mcfg {

/// The store as its watcher sees it: file_event(kind, seen) reports a batch
/// of events about the source (kind: a file_event_kind; seen: the watcher's
/// event count); watch_stopped(why): the watcher's thread ended on a
/// failure. Tests send these under the test_coordinator.

using file_store_watched_actor
  = store_actor::extend<caf::reacts_to<file_event_atom, uint8_t, uint64_t>,
                        caf::reacts_to<watch_stopped_atom, std::string>>;

/// How the store learns about edits.
enum class watch_mode {
  /// inotify; polling where inotify is unavailable.
  automatic,
  /// Polling only.
  polling,
  /// Only file_event messages sent to it (tests drive them).
  events,
};

struct file_store_spec {
  std::string source_path;
  std::shared_ptr<source_of_truth> truth;
  /// Checks beyond the schema (e.g. what memcached would misread); returns
  /// the problems, located with source_document::locate.
  source_validator validate;
  watch_mode watch = watch_mode::automatic;
  /// After a change that may be part of a save under way.
  caf::timespan quiet_period = std::chrono::milliseconds(50);
  /// After the file was renamed into place or closed by its writer.
  caf::timespan settle_complete = caf::timespan{0};
  /// When a read met events not yet reported (maybe about other files):
  /// how soon to look again.
  caf::timespan recheck = std::chrono::milliseconds(1);
  /// Polling only.
  caf::timespan poll_interval = std::chrono::milliseconds(100);
};

store_actor spawn_file_store(caf::actor_system& sys, file_store_spec spec);

/// Validates `bytes` (the source file's, read by read_source_bytes) as the
/// source at `path` and applies `validate`: the document, or its errors.
source_load_result parse_and_validate(const std::string& bytes,
                                      const std::string& path,
                                      const source_validator& validate);

/// Loads `path` and applies `validate`: the document, or its errors.
source_load_result load_and_validate(const std::string& path,
                                     const source_validator& validate);

} // namespace mcfg
