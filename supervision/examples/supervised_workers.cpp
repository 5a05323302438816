// The supervisor's README example (README.md, "Supervision"): a small tree,
// its operations, named lookup, and an orderly stop. Built with the project
// and run as a test; it exits non-zero if the tree does not behave.
#include <iostream>
#include <vector>

#include <caf/all.hpp>

#include "memcached_cfg/supervision/supervisor.hpp"

using namespace mcfg;

// Any actor can be a child. This one answers `get` with its actor id.
caf::behavior echo(caf::event_based_actor* self) {
  return {[=](caf::get_atom) { return self->id(); }};
}

caf::expected<caf::actor> start_echo(caf::actor_system& sys) {
  return sys.spawn(echo);
}

int main() {
  caf::actor_system_config cfg;
  sup::add_message_types(cfg);
  caf::actor_system sys{cfg};

  // root (rest_for_one, at most 3 restarts in 10 s)
  // ├── source   worker
  // ├── writer   worker, 2 s to stop before it is killed
  // └── sub      supervisor (one_for_one) └── leaf  worker
  sup::supervisor_flags flags;
  flags.name = "root";
  flags.how = sup::strategy::rest_for_one;
  auto writer = sup::worker_child(caf::atom("writer"), start_echo);
  writer.shutdown = sup::shutdown_policy::timeout(std::chrono::seconds(2));
  auto root = sup::start_supervisor(
    sys, flags,
    {sup::worker_child(caf::atom("source"), start_echo), writer,
     sup::supervisor_child(
       caf::atom("sub"), {},
       {sup::worker_child(caf::atom("leaf"), start_echo)})});
  if (!root) {
    std::cerr << "start failed: " << sup::describe(root.error()) << '\n';
    return 1;
  }

  caf::scoped_actor self{sys};
  auto ok = true;
  auto check = [&](bool x, const char* what) {
    std::cout << (x ? "ok: " : "FAILED: ") << what << '\n';
    ok = ok && x;
  };
  // Every operation is a typed request; replies are plain data.
  self->request(*root, caf::infinite, sup::which_children_atom::value)
    .receive(
      [&](const std::vector<sup::child_info>& children) {
        for (auto& c : children)
          std::cout << caf::to_string(c.id) << ' ' << sup::to_string(c.status)
                    << ' ' << sup::to_string(c.type) << '\n';
        check(children.size() == 3, "three children, in start order");
      },
      [&](caf::error& err) { check(false, sup::describe(err).c_str()); });

  // Each incarnation is registered under its id.
  auto first = sys.registry().get<caf::actor>(caf::atom("writer"));
  check(first != nullptr, "'writer' is registered");

  // Stop it (exit request, up to 2 s, then kill) and start it again.
  self
    ->request(*root, caf::infinite, sup::terminate_child_atom::value,
              caf::atom("writer"))
    .receive([](caf::ok_atom) {},
             [&](caf::error& err) {
               check(false, sup::describe(err).c_str());
             });
  check(sys.registry().get<caf::actor>(caf::atom("writer")) == nullptr,
        "a stopped child has no name");
  self
    ->request(*root, caf::infinite, sup::restart_child_atom::value,
              caf::atom("writer"))
    .receive(
      [&](caf::actor& second) {
        check(second != first, "restart_child made a new incarnation");
        check(sys.registry().get<caf::actor>(caf::atom("writer")) == second,
              "the name reaches the new incarnation");
      },
      [&](caf::error& err) { check(false, sup::describe(err).c_str()); });

  self->request(*root, caf::infinite, sup::count_children_atom::value)
    .receive(
      [&](const sup::child_counts& n) {
        check(n.specs == 3 && n.active == 3 && n.supervisors == 1,
              "3 specs, 3 active, 1 supervisor");
      },
      [&](caf::error& err) { check(false, sup::describe(err).c_str()); });

  // An orderly stop: children go in reverse start order, then the root.
  self->monitor(*root);
  self->send_exit(*root, caf::exit_reason::user_shutdown);
  self->receive([&](caf::down_msg& down) {
    check(down.reason == caf::exit_reason::user_shutdown,
          "the root exits with the reason it was given");
  });

  // A child that cannot start fails its supervisor's start, named.
  auto broken = sup::start_supervisor(
    sys, flags,
    {sup::worker_child(caf::atom("broken"),
                       [](caf::actor_system&) -> caf::expected<caf::actor> {
                         return caf::make_error(caf::sec::runtime_error);
                       })});
  check(!broken
          && sup::describe(broken.error())
                 .find("failed to start child "
                       "'broken'")
               != std::string::npos,
        "a start failure names the child");
  return ok ? 0 : 1;
}
