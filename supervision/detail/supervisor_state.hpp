#pragma once
// The supervisor's insides (supervisor_state.cpp; supervisor.cpp hands it
// the messages), declared apart so that the moving parts can be read before
// the code: the records it keeps, the events it queues, the plans of stops
// and starts it runs, and the state class whose handlers drive them. The
// restart rules it applies are restart_policy's. Not part of the API.
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "memcached_cfg/supervision/detail/restart_policy.hpp"
#include "memcached_cfg/supervision/supervisor.hpp"

namespace mcfg::sup::detail {

// -- the supervisor's messages to itself --------------------------------------

/// The shutdown timeout of the child being stopped elapsed. It carries the
/// token of that stop: CAF 0.17 cannot cancel a delayed message, so one that
/// arrives after its child went in time finds no match and is dropped.
using stop_timeout_atom = caf::atom_constant<caf::atom("sv_stop_to")>;
/// A restart scheduled for later is due: after a backoff delay, or the next
/// attempt after a failed start (OTP's try_again_restart). Token as above.
using restart_due_atom = caf::atom_constant<caf::atom("sv_due")>;

/// The public interface plus the timers; clients only ever see the former.
using supervisor_impl = supervisor_actor::extend<
  caf::reacts_to<stop_timeout_atom, uint64_t>,
  caf::reacts_to<restart_due_atom, child_id, uint64_t>>;

// -- the supervisor's bookkeeping ---------------------------------------------

struct child_record {
  explicit child_record(child_spec x) : spec(std::move(x)) {
  }

  child_spec spec;
  /// The live incarnation; invalid when none runs.
  caf::actor handle;
  child_status status = child_status::stopped;
  /// When the live (or last) incarnation started; empty after a failed
  /// start. Tells the backoff whether the last incarnation was stable.
  std::optional<caf::actor_clock::time_point> started_at;
  /// Restarts in a row after unstable incarnations: the backoff exponent.
  uint32_t quick_restarts = 0;
  /// The restart_due message that counts; 0 when none is pending.
  uint64_t due_token = 0;
  /// Why the pending restart happens, for the "restarted" log line.
  std::string restart_cause;
};

/// An incarnation terminated without being asked to.
struct child_exit {
  caf::actor_addr source;
  caf::error reason;
};

/// Someone asked the supervisor to exit.
struct exit_request {
  caf::error reason;
};

/// A scheduled restart came due.
struct restart_due {
  child_id id;
  uint64_t token;
};

/// A client's operation, and how to refuse it if the supervisor exits first
/// (a dropped promise would leave the client waiting forever in CAF 0.17).
struct client_request {
  std::function<void()> serve;
  std::function<void(const caf::error&)> refuse;
};

using event
  = std::variant<child_exit, exit_request, restart_due, client_request>;

enum class step_kind { stop, start };

struct step {
  step_kind kind;
  child_id id;
};

struct start_failure {
  child_id id;
  caf::error reason;
};

/// Stops and starts run one after the other, each waiting for the previous
/// one to complete, as OTP's terminate_children and start_children block the
/// supervisor. Events that arrive meanwhile wait in the backlog.
struct plan {
  std::deque<step> steps;
  /// The first start that failed; the remaining steps are then skipped.
  std::optional<start_failure> failure;
  /// Says why children start, for the log: empty at the first start.
  std::string cause;
  std::function<void(std::optional<start_failure>)> done;
};

/// The plan waits for a child it asked to exit (or killed) to go.
struct awaiting_exit {
  child_id id;
  caf::actor_addr child;
  /// Token of the pending stop timeout; 0 when there is none.
  uint64_t timer = 0;
};

/// The plan waits for a child started with `await_ready` to answer.
struct awaiting_ready {
  child_id id;
  caf::actor_addr child;
  uint64_t token = 0;
};

using waiting = std::variant<std::monostate, awaiting_exit, awaiting_ready>;

// -- the supervisor -----------------------------------------------------------

/// OTP's supervisor is a gen_server that blocks while it stops or starts a
/// child. An actor must not block, so this one runs a `plan` instead: a step
/// either completes at once or leaves the state waiting (for a down message,
/// a stop timeout, a ready answer), and whatever else arrives meanwhile
/// (child exits, exit requests, client requests, restarts due) queues in the
/// backlog, served in arrival order between plans. The result is OTP's
/// ordering without blocking: one restart or stop at a time, requests
/// answered in between.
class supervisor_state {
public:
  using pointer = supervisor_impl::stateful_pointer<supervisor_state>;

  explicit supervisor_state(pointer self)
    : self_(self), live_(std::make_shared<std::set<caf::actor_addr>>()) {
  }

  /// Takes the flags and starts the children in order.
  void start(supervisor_flags flags, std::vector<child_spec> specs);

  // -- message handlers -------------------------------------------------------

  void on_down(caf::down_msg& msg);
  void on_exit_msg(caf::exit_msg& msg);
  void on_stop_timeout(uint64_t token);
  void on_restart_due(child_id id, uint64_t token);
  caf::typed_response_promise<caf::ok_atom> ready();

  /// Queues a client's operation `op(promise)`; it runs once no plan runs.
  template <class T, class F>
  caf::typed_response_promise<T> serve(F op) {
    auto rp = self_->make_response_promise<T>();
    backlog_.emplace_back(
      client_request{[op, rp]() mutable { op(rp); },
                     [rp](const caf::error& err) mutable { rp.deliver(err); }});
    pump();
    return rp;
  }

  // -- client operations (run from the backlog) -------------------------------

  void which_children(caf::typed_response_promise<std::vector<child_info>> rp);
  void count_children(caf::typed_response_promise<child_counts> rp);
  void start_child(child_spec spec, caf::typed_response_promise<caf::actor> rp);
  void terminate_child(child_id id,
                       caf::typed_response_promise<caf::ok_atom> rp);
  void restart_child(child_id id, caf::typed_response_promise<caf::actor> rp);
  void delete_child(child_id id, caf::typed_response_promise<caf::ok_atom> rp);

private:
  // -- the engine -------------------------------------------------------------

  void pump();
  void run_plan(std::deque<step> steps, std::string cause,
                std::function<void(std::optional<start_failure>)> done);
  void handle(child_exit& x);
  void handle(exit_request& x);
  void handle(restart_due& x);
  void handle(client_request& x);

  // -- steps ------------------------------------------------------------------

  void begin_stop(child_id id);
  void stopped(child_record& child, const caf::error& reason);
  void begin_start(child_id id);
  caf::expected<caf::actor> call_start(const child_spec& spec);
  void adopt(child_record& child, caf::actor handle);
  void report_started(child_id id);
  void ask_ready(child_record& child);
  void on_ready(uint64_t token, caf::error err);
  void not_ready(child_id id, caf::error reason);
  void forget_incarnation(child_record& child);

  // -- restarts ---------------------------------------------------------------

  void restart(child_record& child, const caf::error& reason);
  void retry_later(child_record& child, const caf::error& reason);
  bool within_limit(child_record& child, const caf::error& reason);
  void schedule_restart(child_record& child, caf::timespan delay);
  void run_restart(child_id id);
  void restart_failed(const start_failure& failure);
  void give_up(child_id id, const caf::error& reason);

  // -- stopping ---------------------------------------------------------------

  void start_failed(const start_failure& failure);
  void stop_all_then_quit(caf::error reason);
  void quit(caf::error reason);

  // -- lookups and reports ----------------------------------------------------

  child_record* find(child_id id);
  child_record* find(const caf::actor_addr& addr);
  void remove(child_id id);
  std::optional<caf::error> take_queued_exit(const caf::actor_addr& addr);
  caf::error sup_error(sup_errc code, child_id id) const;
  /// `sup::describe` with other categories rendered by this actor's system,
  /// so that a child's reason reads in the log as its program renders it.
  std::string describe(const caf::error& reason) const;
  std::string window_note();
  caf::actor_clock::time_point now() const;

  pointer self_;
  supervisor_flags flags_;
  std::string component_;
  /// In start order.
  std::vector<child_record> children_;
  restart_policy restarts_;
  std::deque<event> backlog_;
  std::optional<plan> plan_;
  waiting waiting_;
  std::vector<caf::typed_response_promise<caf::ok_atom>> ready_waiters_;
  bool started_ = false;
  bool quitting_ = false;
  /// Source of the tokens that tell current timers and replies from stale.
  uint64_t tokens_ = 0;
  /// The addresses of live children, shared with a functor attached to the
  /// supervisor: if it dies without stopping them (killed, or a bug throws),
  /// that functor kills them, as a link would in Erlang.
  std::shared_ptr<std::set<caf::actor_addr>> live_;
};

} // namespace mcfg::sup::detail
