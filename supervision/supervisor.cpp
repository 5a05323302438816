#include "memcached_cfg/supervision/supervisor.hpp"

#include <utility>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "memcached_cfg/supervision/detail/supervisor_state.hpp"

namespace mcfg::sup {

const char* to_string(child_status x) {
  switch (x) {
    case child_status::running:
      return "running";
    case child_status::restarting:
      return "restarting";
    case child_status::stopped:
      return "stopped";
  }
  return "unknown";
}

namespace {

using detail::restart_due_atom;
using detail::stop_timeout_atom;

// -- the behavior -------------------------------------------------------------

/// Hands each message to the state (detail/supervisor_state.hpp).
detail::supervisor_impl::behavior_type
supervisor(detail::supervisor_state::pointer self, supervisor_flags flags,
           std::vector<child_spec> children) {
  self->set_down_handler(
    [self](caf::down_msg& msg) { self->state.on_down(msg); });
  self->set_exit_handler(
    [self](caf::exit_msg& msg) { self->state.on_exit_msg(msg); });
  self->state.start(std::move(flags), std::move(children));
  auto& st = self->state;
  return {
    [&st](ready_atom) { return st.ready(); },
    [&st](which_children_atom) {
      return st.serve<std::vector<child_info>>(
        [&st](auto rp) { st.which_children(std::move(rp)); });
    },
    [&st](count_children_atom) {
      return st.serve<child_counts>(
        [&st](auto rp) { st.count_children(std::move(rp)); });
    },
    [&st](start_child_atom, child_spec& spec) {
      return st.serve<caf::actor>(
        [&st, spec](auto rp) { st.start_child(spec, std::move(rp)); });
    },
    [&st](terminate_child_atom, child_id id) {
      return st.serve<caf::ok_atom>(
        [&st, id](auto rp) { st.terminate_child(id, std::move(rp)); });
    },
    [&st](restart_child_atom, child_id id) {
      return st.serve<caf::actor>(
        [&st, id](auto rp) { st.restart_child(id, std::move(rp)); });
    },
    [&st](delete_child_atom, child_id id) {
      return st.serve<caf::ok_atom>(
        [&st, id](auto rp) { st.delete_child(id, std::move(rp)); });
    },
    [&st](stop_timeout_atom, uint64_t token) { st.on_stop_timeout(token); },
    [&st](restart_due_atom, child_id id, uint64_t token) {
      st.on_restart_due(id, token);
    },
  };
}

} // namespace

// -- public API ---------------------------------------------------------------

supervisor_actor spawn_supervisor(caf::actor_system& sys,
                                  supervisor_flags flags,
                                  std::vector<child_spec> children) {
  return sys.spawn(supervisor, std::move(flags), std::move(children));
}

caf::expected<supervisor_actor>
start_supervisor(caf::actor_system& sys, supervisor_flags flags,
                 std::vector<child_spec> children) {
  auto sup = spawn_supervisor(sys, std::move(flags), std::move(children));
  caf::scoped_actor self{sys};
  // Monitor first: a supervisor that exits before it answers bounces the
  // request, and only its exit reason says why.
  self->monitor(sup);
  caf::error err;
  self->request(sup, caf::infinite, ready_atom::value)
    .receive([](caf::ok_atom) {}, [&](caf::error& x) { err = std::move(x); });
  if (err == caf::sec::request_receiver_down)
    self->receive([&](caf::down_msg& msg) { err = std::move(msg.reason); });
  self->demonitor(sup.address());
  if (err)
    return err;
  return sup;
}

child_spec supervisor_child(child_id id, supervisor_flags flags,
                            std::vector<child_spec> children) {
  if (flags.name.empty() || flags.name == supervisor_flags{}.name)
    flags.name = caf::to_string(id);
  child_spec result;
  result.id = id;
  result.type = child_type::supervisor;
  result.shutdown = shutdown_policy::infinity();
  result.await_ready = true;
  result.start = [flags = std::move(flags), children = std::move(children)](
                   caf::actor_system& sys) -> caf::expected<caf::actor> {
    return caf::actor_cast<caf::actor>(spawn_supervisor(sys, flags, children));
  };
  return result;
}

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<child_info>("mcfg::sup::child_info");
  cfg.add_message_type<std::vector<child_info>>(
    "std::vector<mcfg::sup::child_info>");
  cfg.add_message_type<child_counts>("mcfg::sup::child_counts");
  cfg.add_error_category(sup_errc_category, [](uint8_t code, caf::atom_value,
                                               const caf::message& ctx) {
    return render_sup_error(code, ctx);
  });
}

} // namespace mcfg::sup
