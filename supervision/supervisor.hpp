#pragma once
// An Erlang/OTP-style supervisor for CAF 0.17 (ARCHITECTURE.md §4), which CAF
// lacks: it starts its children in order, watches them, restarts them by
// strategy within a restart-intensity budget, and stops them in reverse order
// with OTP's shutdown protocol. Operations are typed messages; replies are
// data, refusals are `sup_errc` errors (errors.hpp).
//
// Stopping a supervisor: send it an exit message. `exit_reason::user_shutdown`
// (or any other non-normal reason) stops the children in reverse start order,
// each by its shutdown policy, then the supervisor exits with that reason.
// `exit_reason::kill` ends it at once; its children are then killed too.
#include <cstdint>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "memcached_cfg/supervision/child_spec.hpp"
#include "memcached_cfg/supervision/errors.hpp"

namespace mcfg::sup {

/// ready: answered `ok` once every initial child has started, or with the
/// `start_failed` error naming the child that did not, after the children
/// already started were stopped (the supervisor then exits with that error).
using ready_atom = caf::atom_constant<caf::atom("sv_ready")>;
using which_children_atom = caf::atom_constant<caf::atom("sv_which")>;
using count_children_atom = caf::atom_constant<caf::atom("sv_count")>;
using start_child_atom = caf::atom_constant<caf::atom("sv_start")>;
using terminate_child_atom = caf::atom_constant<caf::atom("sv_term")>;
using restart_child_atom = caf::atom_constant<caf::atom("sv_restart")>;
using delete_child_atom = caf::atom_constant<caf::atom("sv_delete")>;

enum class child_status : uint8_t {
  /// An incarnation runs (or is being asked whether it is ready).
  running,
  /// It terminated and waits to be started again: its last start failed, or
  /// a restart delay (backoff) runs.
  restarting,
  /// Nothing runs: terminated by request, exited and not to be restarted
  /// (transient), or its start function said "ignore".
  stopped,
};

const char* to_string(child_status x);

/// One row of which_children, in start order.
struct child_info {
  child_id id = caf::atom("");
  /// The live incarnation; invalid unless `status` is running.
  caf::actor handle;
  child_status status = child_status::stopped;
  child_type type = child_type::worker;
  restart_type restart = restart_type::permanent;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_info& x) {
  return f(caf::meta::type_name("child_info"), x.id, x.handle, x.status, x.type,
           x.restart);
}

/// The answer to count_children (OTP's proplist, as a struct).
struct child_counts {
  uint32_t specs = 0; ///< children with a spec, running or not
  uint32_t active = 0; ///< children with a running incarnation
  uint32_t supervisors = 0; ///< specs of type supervisor
  uint32_t workers = 0; ///< specs of type worker
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_counts& x) {
  return f(caf::meta::type_name("child_counts"), x.specs, x.active,
           x.supervisors, x.workers);
}

/// What clients may ask a supervisor. Requests are served one at a time, in
/// arrival order, between restarts and stops (as OTP's supervisor, a
/// gen_server, serves calls): a request that arrives while children are
/// being stopped or started is answered once that is done.
using supervisor_actor = caf::typed_actor<
  caf::replies_to<ready_atom>::with<caf::ok_atom>,
  // Every child in start order.
  caf::replies_to<which_children_atom>::with<std::vector<child_info>>,
  caf::replies_to<count_children_atom>::with<child_counts>,
  // Adds a child at the end of the start order and starts it; answers the
  // new incarnation (invalid for "ignore"). Refused with
  // child_already_started / child_already_present / invalid_child_spec /
  // start_failed (the spec is then not kept). Local only: a spec has code.
  caf::replies_to<start_child_atom, child_spec>::with<caf::actor>,
  // Stops the child by its shutdown policy; its spec stays (a temporary
  // child's goes) and it is not restarted. child_not_found otherwise.
  caf::replies_to<terminate_child_atom, child_id>::with<caf::ok_atom>,
  // Starts a stopped child again; answers the new incarnation. Refused with
  // child_not_found / child_running / child_restarting / start_failed.
  caf::replies_to<restart_child_atom, child_id>::with<caf::actor>,
  // Forgets a stopped child's spec. Refused with child_not_found /
  // child_running / child_restarting.
  caf::replies_to<delete_child_atom, child_id>::with<caf::ok_atom>>;

/// Spawns a supervisor; it starts `children` in order right away. Ask it
/// `ready` to learn how that went (or use start_supervisor). Invalid flags or
/// specs (duplicate ids, no start function) fail the start like a child that
/// fails to start.
supervisor_actor spawn_supervisor(caf::actor_system& sys,
                                  supervisor_flags flags,
                                  std::vector<child_spec> children);

/// Spawns a supervisor and blocks until it is ready: the supervisor, or the
/// error that failed its start. For programs on a real scheduler only: under
/// the test_coordinator nothing runs while this waits, so tests use
/// spawn_supervisor and ask `ready`.
caf::expected<supervisor_actor>
start_supervisor(caf::actor_system& sys, supervisor_flags flags,
                 std::vector<child_spec> children);

/// A child that is itself a supervisor: type supervisor, shutdown infinity,
/// started with `await_ready`, so that its parent's start fails if its own
/// does. An empty `flags.name` or the default one becomes the id's text.
child_spec supervisor_child(child_id id, supervisor_flags flags,
                            std::vector<child_spec> children);

/// Announces the supervisor's message types and error category to a config,
/// so replies cross the network and `sys.render(err)` reads as `describe`.
void add_message_types(caf::actor_system_config& cfg);

} // namespace mcfg::sup
