#pragma once
// What a supervisor is made of (ARCHITECTURE.md §4): child specs and the
// supervisor's own flags, with Erlang/OTP's meaning and defaults unless noted.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

namespace mcfg::sup {

/// A child's name within its supervisor, and the key under which each of its
/// incarnations is registered in the actor system's registry (which CAF 0.17
/// keys by atom): write `caf::atom("writer")`, or `make_child_id(text)` for a
/// name known only at run time.
using child_id = caf::atom_value;

/// Checks that `name` fits an atom without loss: 1 to 10 characters out of
/// [A-Za-z0-9_]. Anything else is an `invalid_child_id` error.
caf::expected<child_id> make_child_id(std::string_view name);

/// When a terminated child is started again (OTP's restart types).
enum class restart_type : uint8_t {
  /// Always, whatever the exit reason.
  permanent,
  /// Only after an abnormal exit: any reason other than normal or
  /// `exit_reason::user_shutdown` (CAF's counterpart of OTP's `shutdown`).
  transient,
  /// Never; the child is removed from the supervisor once it has stopped.
  temporary,
};

/// Worker or supervisor: reported by which_children/count_children.
enum class child_type : uint8_t { worker, supervisor };

/// Which children a restart affects.
enum class strategy : uint8_t {
  /// Only the child that terminated.
  one_for_one,
  /// All children: the others are stopped in reverse start order, then all
  /// are started again in start order.
  one_for_all,
  /// The child that terminated and every child started after it.
  rest_for_one,
};

const char* to_string(restart_type x);
const char* to_string(child_type x);
const char* to_string(strategy x);

/// How a child is stopped: OTP's `Shutdown`.
class shutdown_policy {
public:
  enum class kind : uint8_t {
    /// Ask the child to exit (`exit_reason::user_shutdown`), wait up to the
    /// timeout for it to go, then kill it.
    timeout,
    /// Kill it (`exit_reason::kill`, which no exit handler can intercept).
    brutal_kill,
    /// Ask it to exit and wait as long as it takes: for child supervisors,
    /// which need the time to stop their own children.
    infinity,
  };

  static shutdown_policy timeout(caf::timespan t) {
    return {kind::timeout, t};
  }
  static shutdown_policy brutal_kill() {
    return {kind::brutal_kill, caf::timespan{0}};
  }
  static shutdown_policy infinity() {
    return {kind::infinity, caf::timespan{0}};
  }

  kind what() const {
    return kind_;
  }
  /// The timeout; meaningful for `kind::timeout` only.
  caf::timespan time() const {
    return time_;
  }

private:
  shutdown_policy(kind k, caf::timespan t) : kind_(k), time_(t) {
  }
  kind kind_;
  caf::timespan time_;
};

std::string to_string(const shutdown_policy& x);

/// A duration as the supervisor's lines and errors write it, in the largest
/// whole unit: "10s", "250ms", "5us", "7ns" (node.yaml's notation).
std::string format_duration(caf::timespan d);

/// Beyond OTP, off by default: wait before restarting a child, doubling the
/// wait with each restart that follows an incarnation which did not last,
/// between `min` and `max`. An incarnation that ran for `reset_after` or
/// longer counts as stable: the next restart waits `min` again.
struct restart_backoff {
  /// Zero turns the backoff off: restarts happen at once, as in OTP.
  caf::timespan min{0};
  caf::timespan max{std::chrono::seconds(30)};
  caf::timespan reset_after{std::chrono::seconds(60)};

  bool enabled() const {
    return min.count() > 0;
  }

  /// The wait before a restart that follows `failures` quick failures in a
  /// row (0 for the first one).
  caf::timespan delay(uint32_t failures) const;
};

/// Starts one incarnation of a child: spawns it (or fails) and hands the
/// handle to the supervisor, which monitors it from then on. An invalid
/// (default-constructed) handle means "ignore" as in OTP: nothing runs, the
/// spec is kept (a temporary one is dropped). Typed handles convert with
/// `caf::actor_cast<caf::actor>`. An exception thrown counts as an error.
using start_function
  = std::function<caf::expected<caf::actor>(caf::actor_system&)>;

namespace detail {

template <class T>
struct is_expected : std::false_type {};

template <class T>
struct is_expected<caf::expected<T>> : std::true_type {};

} // namespace detail

/// Adapts `f(sys)`, returning any actor handle (typed or not) or an
/// `expected` of one, to a start_function. The writer, for instance:
///   make_start([spec](caf::actor_system& sys) {
///     return spawn_memcached_cfg(sys, spec);
///   })
template <class F>
start_function make_start(F f) {
  return
    [f = std::move(f)](caf::actor_system& sys) -> caf::expected<caf::actor> {
      auto result = f(sys);
      if constexpr (detail::is_expected<decltype(result)>::value) {
        if (!result)
          return std::move(result.error());
        return caf::actor_cast<caf::actor>(std::move(*result));
      } else {
        return caf::actor_cast<caf::actor>(std::move(result));
      }
    };
}

struct child_spec {
  child_id id = caf::atom("");
  start_function start;
  restart_type restart = restart_type::permanent;
  /// OTP's defaults: 5 s for a worker; `supervisor_child()` sets infinity.
  shutdown_policy shutdown = shutdown_policy::timeout(std::chrono::seconds(5));
  child_type type = child_type::worker;
  /// After `start` returns, ask the child `ready` (see supervisor.hpp) and
  /// count it as started only once it answers: OTP's start_link, which
  /// returns once the child's init is done. Supervisors answer once all their
  /// children are up, so a nested start failure fails the parent's start.
  bool await_ready = false;
  /// Register each incarnation under `id` in the actor system's registry.
  /// Ids are global there: two supervisors must not register the same id.
  bool register_name = true;
  restart_backoff backoff;
};

/// A worker with OTP's defaults: permanent, 5 s shutdown timeout.
child_spec worker_child(child_id id, start_function start);

/// Checks a spec as OTP's check_childspec does; `none` when it is usable,
/// else an `invalid_child_spec` error naming `supervisor` and the child.
caf::error check_child_spec(const child_spec& spec,
                            const std::string& supervisor = {});

/// The supervisor's own settings.
struct supervisor_flags {
  /// Names the supervisor in logs ("supervisor root: ...") and exit reasons.
  std::string name = "supervisor";
  strategy how = strategy::one_for_one;
  /// More than `intensity` restarts within `period` and the supervisor gives
  /// up. The defaults are ns_server's (OTP's own are 1 in 5 s).
  uint32_t intensity = 3;
  caf::timespan period = std::chrono::seconds(10);
};

/// `none` when the flags are usable (a period must be positive).
caf::error check_flags(const supervisor_flags& flags);

} // namespace mcfg::sup

// A spec carries code (its start function): it can be sent to a supervisor in
// the same process (start_child) but never over the network.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mcfg::sup::child_spec)
