#pragma once
// refresher: tells consumers to re-read their files after a rename (signal a
// pid from a pidfile, run a command, ...). Requests are coalesced per file; a
// failed refresh is logged and retried every `retry_interval` until it goes
// through. It runs refresh actions in its own thread (spawn it detached), so
// a slow command never blocks a writer.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/node_status.hpp"

namespace mcfg {

using refresher_actor = caf::typed_actor<
  // The file at this path was renamed into place: refresh its consumer.
  caf::reacts_to<refresh_atom, std::string>,
  // Answered once no refresh is pending or failing.
  caf::replies_to<sync_atom>::with<caf::ok_atom>,
  caf::replies_to<status_atom>::with<std::vector<refresh_status>>>;

/// One refresh: empty on success, else what went wrong (no secrets).
using refresh_action = std::function<std::string()>;

struct refresher_spec {
  /// The action per file path; a path without one needs no refresh.
  std::map<std::string, refresh_action> actions;
  caf::timespan retry_interval = std::chrono::seconds(1);
  /// Refresh every file once at start: a restarted refresher cannot know
  /// which requests its dead incarnation lost, and a spare re-read is
  /// harmless.
  bool refresh_on_start = false;
  /// Held while an action runs; the node's rename step tries it too (and
  /// fails with EBUSY, to be retried, rather than wait), so a consumer never
  /// re-reads while a rename is under way.
  std::shared_ptr<std::mutex> file_lock = std::make_shared<std::mutex>();
};

refresher_actor spawn_refresher(caf::actor_system& sys, refresher_spec spec,
                                bool detached = true);

} // namespace mcfg
