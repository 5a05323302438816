#pragma once
// An actor system on CAF's test_coordinator: deterministic order, simulated
// time. Nothing runs until the test says so (run / advance).
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "memcached_cfg/messages/message_types.hpp"

namespace mcfg::test {

struct coordinator_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;

  coordinator_fixture()
    : sys(init_config(cfg)),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    // A clock at its epoch would make "now - last change" look like a long
    // time ago for anything done at t = 0.
    sched.clock().current_time += std::chrono::hours(1);
    // A test that fails with actors still alive must end, not hang.
    sys.await_actors_before_shutdown(false);
  }

  ~coordinator_fixture() {
    sched.clock().cancel_all();
    sched.run();
  }

  /// Processes every queued message, without moving time.
  size_t run() {
    return sched.run();
  }

  /// Moves simulated time by `d`, fires what is due, then processes every
  /// message that follows from it.
  size_t advance(caf::timespan d) {
    sched.advance_time(d);
    return sched.run();
  }

  caf::timespan elapsed_since(caf::actor_clock::time_point t) const {
    return sched.clock().current_time - t;
  }

private:
  static caf::actor_system_config& init_config(caf::actor_system_config& cfg) {
    add_message_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    return cfg;
  }
};

} // namespace mcfg::test
