#pragma once
// Supervisors under the test_coordinator, with workers that write down what
// happens to them: a journal of starts and stops, in the order they happened.
#include <doctest/doctest.h>

#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/programs/supervisor_log.hpp"
#include "memcached_cfg/supervision/supervisor.hpp"
#include "support/coordinator_fixture.hpp"
#include "support/log_capture.hpp"

namespace mcfg::test {

/// (crash_atom): the worker exits normally; (crash_atom, error): with that
/// reason.
using crash_atom = caf::atom_constant<caf::atom("t_crash")>;

/// Starts and stops in the order they happened: "start a", "stop a (kill)".
using journal = std::vector<std::string>;

/// For its lifetime the supervisors' lines go to mcfg's log, as in mcfgd, so
/// that a log_capture sees them.
struct supervisor_lines_in_log {
  sup::log::handler previous = log_supervisors_to_mcfg_log();

  ~supervisor_lines_in_log() {
    sup::log::set_handler(std::move(previous));
  }
};

struct supervision_fixture : coordinator_fixture {
  std::shared_ptr<journal> events = std::make_shared<journal>();
  log_capture logs;
  supervisor_lines_in_log routed;
  std::vector<caf::actor> supervisors;
  std::vector<caf::actor> helpers;

  ~supervision_fixture() {
    // Whatever a test left running goes now, so the actor system can stop.
    for (auto& s : supervisors)
      caf::anon_send_exit(s, caf::exit_reason::kill);
    for (auto& h : helpers)
      caf::anon_send_exit(h, caf::exit_reason::kill);
    run();
  }

  // -- workers ----------------------------------------------------------------

  /// A start function for a worker named `name`. A worker that ignores exit
  /// requests stops only when killed (or told to crash).
  sup::start_function worker(std::string name, bool ignore_exit = false) {
    auto log = events;
    return [log, name,
            ignore_exit](caf::actor_system& sys) -> caf::expected<caf::actor> {
      log->push_back("start " + name);
      auto h = sys.spawn([ignore_exit](caf::event_based_actor* self) {
        if (ignore_exit)
          self->set_exit_handler([](caf::exit_msg&) {});
        return caf::behavior{
          [self](crash_atom) { self->quit(); },
          [self](crash_atom, caf::error& reason) {
            self->quit(std::move(reason));
          },
        };
      });
      h->attach_functor([log, name](const caf::error& reason) {
        log->push_back("stop " + name + " (" + short_reason(reason) + ")");
      });
      return h;
    };
  }

  /// A start function that fails with `reason`.
  sup::start_function failing(std::string name, caf::error reason) {
    auto log = events;
    return
      [log, name, reason](caf::actor_system&) -> caf::expected<caf::actor> {
        log->push_back("fail " + name);
        return reason;
      };
  }

  sup::child_spec child(caf::atom_value id, bool ignore_exit = false) {
    return sup::worker_child(id, worker(caf::to_string(id), ignore_exit));
  }

  sup::child_spec child(caf::atom_value id, sup::restart_type restart) {
    auto result = child(id);
    result.restart = restart;
    return result;
  }

  static sup::supervisor_flags
  flags(std::string name, sup::strategy how, uint32_t intensity = 3,
        caf::timespan period = std::chrono::seconds(10)) {
    sup::supervisor_flags result;
    result.name = std::move(name);
    result.how = how;
    result.intensity = intensity;
    result.period = period;
    return result;
  }

  // -- supervisors ------------------------------------------------------------

  /// Spawns a supervisor and lets it start its children.
  sup::supervisor_actor spawn(sup::supervisor_flags f,
                              std::vector<sup::child_spec> children) {
    auto s = sup::spawn_supervisor(sys, std::move(f), std::move(children));
    supervisors.push_back(caf::actor_cast<caf::actor>(s));
    run();
    return s;
  }

  /// Sends a request from a helper actor; the slot fills when the answer
  /// comes, so a test can also assert that none came yet.
  template <class T, class Handle, class... Ts>
  std::shared_ptr<std::optional<caf::expected<T>>> ask_later(const Handle& h,
                                                             Ts... xs) {
    auto slot = std::make_shared<std::optional<caf::expected<T>>>();
    sys.spawn([h, slot, xs...](caf::event_based_actor* self) {
      self->request(h, caf::infinite, xs...)
        .then([slot](T& x) { *slot = std::move(x); },
              [slot](caf::error& err) { *slot = std::move(err); });
    });
    return slot;
  }

  /// Sends a request and returns its answer after running everything.
  template <class T, class Handle, class... Ts>
  caf::expected<T> ask(const Handle& h, Ts... xs) {
    auto slot = ask_later<T>(h, xs...);
    run();
    REQUIRE(slot->has_value());
    return std::move(**slot);
  }

  /// The children as the supervisor reports them, by id.
  std::map<caf::atom_value, sup::child_info>
  children_of(const sup::supervisor_actor& s) {
    std::map<caf::atom_value, sup::child_info> result;
    auto xs = ask<std::vector<sup::child_info>>(
      s, sup::which_children_atom::value);
    REQUIRE(xs);
    for (auto& x : *xs)
      result.emplace(x.id, x);
    return result;
  }

  /// The child's live incarnation, as the supervisor reports it.
  caf::actor handle_of(const sup::supervisor_actor& s, caf::atom_value id) {
    auto xs = children_of(s);
    auto i = xs.find(id);
    REQUIRE(i != xs.end());
    return i->second.handle;
  }

  /// The incarnation registered under `id`.
  caf::actor lookup(caf::atom_value id) {
    return sys.registry().get<caf::actor>(id);
  }

  void crash(const caf::actor& child, caf::error reason) {
    caf::anon_send(child, crash_atom::value, std::move(reason));
  }

  void exit_normally(const caf::actor& child) {
    caf::anon_send(child, crash_atom::value);
  }

  /// The exit reason of `x` once it has exited; empty while it runs.
  template <class Handle>
  std::shared_ptr<std::optional<caf::error>> watch(const Handle& x) {
    auto slot = std::make_shared<std::optional<caf::error>>();
    auto target = caf::actor_cast<caf::actor>(x);
    // A monitor holds no reference to its observer: the fixture keeps the
    // watcher alive.
    helpers.push_back(sys.spawn([target, slot](caf::event_based_actor* self) {
      self->monitor(target);
      self->set_down_handler([self, slot](caf::down_msg& msg) {
        *slot = msg.reason;
        self->quit();
      });
      return caf::behavior{[](caf::ok_atom) {}};
    }));
    run();
    return slot;
  }

  /// Clears the journal, for a test about what happens next.
  void forget_events() {
    events->clear();
  }

  /// A reason an abnormal exit could have: a rename that failed.
  static caf::error boom() {
    return make_file_error("rename", "/tmp/auth.tmp -> /tmp/auth", EISDIR);
  }

  /// How the journal shows a reason: "boom" for boom(), else describe().
  static std::string short_reason(const caf::error& reason) {
    if (reason && reason.category() == errc_category)
      return "boom";
    return sup::describe(reason);
  }
};

} // namespace mcfg::test
