#pragma once
// The node's control actor: the bridge between the control API's HTTP
// threads and the node's actors. It is never reachable from outside the
// process (mcfgd loads no CAF network layer). It holds no state of its own:
// it reads the files' and refreshes' status from the status board, and
// finds the live incarnation of each child by its registered name at every
// request, so it is right across restarts.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "memcached_cfg/control/api.hpp"
#include "memcached_cfg/messages/atoms.hpp"
#include "memcached_cfg/messages/node_status.hpp"
#include "memcached_cfg/node/status_board.hpp"
#include "memcached_cfg/supervision/child_spec.hpp"

namespace mcfg {

using control_actor = caf::typed_actor<
  caf::replies_to<status_atom>::with<node_status>,
  // Answered once every file ("" = all, else one path) holds the source's
  // current version and its refresh went through (with a consumer check:
  // the consumer was shown to enforce it), with what was waited for per
  // file in node.yaml order; else the first error.
  caf::replies_to<sync_atom, std::string>::with<std::vector<file_sync>>,
  // Re-read the source now and rewrite the files ("" = all).
  caf::replies_to<reload_atom, std::string>::with<caf::ok_atom>>;

struct control_spec {
  /// (path, registry name of its writer), in node.yaml order.
  std::vector<std::pair<std::string, sup::child_id>> files;
  sup::child_id store;
  sup::child_id refresher;
  /// While the node waits for its source before starting its tree (an etcd
  /// that did not answer at start): what status shows as the source, whose
  /// `unreachable` says why and until when; nothing once the tree runs (or
  /// when unset).
  std::function<std::optional<source_status>()> starting;
  /// Where the writers and the refresher publish their status: status
  /// reads it rather than asking them, so a writer stuck in a system call
  /// holds up no status (only the store is asked).
  std::shared_ptr<const status_board> board;
};

control_actor spawn_control(caf::actor_system& sys, control_spec spec);

/// The control API's backend in mcfgd: blocking requests to `control` from
/// the calling (non-CAF) thread, each bounded by `timeout`.
std::unique_ptr<control_backend> make_actor_backend(caf::actor_system& sys,
                                                    control_actor control,
                                                    caf::timespan timeout);

} // namespace mcfg
