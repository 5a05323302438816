#pragma once
// The supervisor's errors, as a CAF error category ("supervisor"), so that a
// supervisor's exit reason and its refusals render as one readable line:
//   supervisor root reached its restart limit (3 in 10s) after child 'writer'
//   failed: gave up writing /etc/auth after 10s of failures: ...
// The context of every code starts with the supervisor's name and the child's
// id (as text); the codes that wrap a child's own error carry it last, as a
// caf::error, so a parent can still inspect what went wrong below.
#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "memcached_cfg/supervision/child_spec.hpp"

namespace mcfg::sup {

enum class sup_errc : uint8_t {
  /// More than `intensity` restarts within `period`; the supervisor stopped
  /// its children and exited. Context: supervisor, child, intensity
  /// (uint32), period (text), reason (error).
  restart_limit_reached = 1,
  /// A child could not be started. Context: supervisor, child, reason.
  start_failed,
  /// No child with that id. Context: supervisor, child.
  child_not_found,
  /// The operation needs a stopped child. Context: supervisor, child.
  child_running,
  /// The child is waiting to be restarted. Context: supervisor, child.
  child_restarting,
  /// start_child with an id that has a spec already, stopped. Context:
  /// supervisor, child.
  child_already_present,
  /// start_child with an id whose child runs. Context: supervisor, child.
  child_already_started,
  /// A child spec is unusable. Context: supervisor, child, what (text).
  invalid_child_spec,
  /// The supervisor's flags are unusable. Context: supervisor, what (text).
  invalid_flags,
  /// A name does not fit a child id. Context: name, what (text).
  invalid_child_id,
  /// A start function threw. Context: what() of the exception.
  start_function_threw,
  /// The supervisor stopped before the request was handled. Context:
  /// supervisor, its exit reason.
  supervisor_stopped,
};

const char* to_string(sup_errc x);

/// The CAF error category of `sup_errc`.
constexpr caf::atom_value sup_errc_category = caf::atom("supervisor");

/// Builds a `sup_errc` error whose context names the supervisor and child.
caf::error make_sup_error(sup_errc code, const std::string& supervisor,
                          child_id child);

/// The same, wrapping the child's own error (start failure).
caf::error make_sup_error(sup_errc code, const std::string& supervisor,
                          child_id child, caf::error reason);

/// The exit reason of a supervisor that gave up because of `child`.
caf::error make_restart_limit_error(const std::string& supervisor,
                                    child_id child, uint32_t intensity,
                                    caf::timespan period, caf::error reason);

/// Renders any exit reason or error as one line of text: "normal" for the
/// empty error (a normal exit), the supervisor's own errors as above
/// (recursively, for nested supervisors), "user_shutdown", "kill", ... for
/// CAF's exit reasons, other errors as CAF prints them without a system
/// (`error(1, 'mcfg', ...)`): this library knows no other category.
std::string describe(const caf::error& reason);

/// The same, with errors of other categories (also those a supervisor error
/// wraps) rendered by `sys`: by the renderers the program registered with
/// `add_error_category`, so a writer's error reads "gave up writing ...".
/// The supervisor's own log lines are rendered this way.
std::string describe(const caf::error& reason, const caf::actor_system& sys);

/// The category renderer, for `actor_system_config::add_error_category`.
/// CAF hands it no system: wrapped errors render as `describe(reason)`.
std::string render_sup_error(uint8_t code, const caf::message& context);

/// Renders a child id as the logs quote it: 'writer'.
std::string quoted(child_id id);

/// True for the exit reasons OTP calls normal or shutdown: the empty error,
/// `exit_reason::normal` and `exit_reason::user_shutdown`. A transient child
/// that exits with one of them is not restarted.
bool is_normal_exit(const caf::error& reason);

} // namespace mcfg::sup

CAF_ERROR_CODE_ENUM(mcfg::sup::sup_errc, "supervisor")
