#pragma once
// The message tags the config writers and the node's actors answer to
// (ARCHITECTURE.md §3); messages an actor only sends itself are declared next
// to it. CAF 0.17 atoms hold at most ten characters.
#include <caf/atom.hpp>

namespace mcfg {

/// change(config_update): the source of truth has a new version.
using change_atom = caf::atom_constant<caf::atom("change")>;
/// sync [version]: answered once the file holds the version (default: the
/// latest the writer knows) and no write is owed.
using sync_atom = caf::atom_constant<caf::atom("sync")>;
/// reload_file: rewrite the file from unchanged state.
using reload_atom = caf::atom_constant<caf::atom("reload")>;
/// full_reset: rebuild the module state from a fresh snapshot, then write.
using reset_atom = caf::atom_constant<caf::atom("full_reset")>;
/// status: report the writer's state (secrets redacted).
using status_atom = caf::atom_constant<caf::atom("status")>;

/// refresh(path): tell the consumer of `path` to re-read it.
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;
/// file_event(kind, seen): the watcher saw the source change (file_store).
using file_event_atom = caf::atom_constant<caf::atom("file_event")>;
/// watch_stopped(why): the watcher's thread ended on a failure (file_store).
using watch_stopped_atom = caf::atom_constant<caf::atom("wstopped")>;

} // namespace mcfg
