#include "memcached_cfg/supervision/detail/supervisor_state.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>

#include "memcached_cfg/supervision/log.hpp"

namespace mcfg::sup::detail {

namespace {

// -- the registry -------------------------------------------------------------

/// Removes `id` from the registry if it still names the incarnation `addr`.
void unregister_incarnation(caf::actor_system& sys, child_id id,
                            const caf::actor_addr& addr) {
  auto& reg = sys.registry();
  auto current = reg.get<caf::strong_actor_ptr>(id);
  if (current && current->address() == addr)
    reg.erase(id);
}

/// Registers `child` under `id` and makes it take the name along when it
/// terminates. The functor runs in the child's own cleanup, before the
/// down message that tells the supervisor (it is attached after the monitor,
/// and CAF runs the latest attachment first), so a lookup can never return a
/// dead incarnation, and a new one is registered only after that.
void register_incarnation(caf::actor_system& sys, child_id id,
                          const caf::actor& child) {
  auto& reg = sys.registry();
  reg.erase(id); // put() keeps an existing entry
  reg.put(id, child);
  child->attach_functor([&sys, id, addr = child.address()](const caf::error&) {
    unregister_incarnation(sys, id, addr);
  });
}

} // namespace

// -- start-up -----------------------------------------------------------------

void supervisor_state::start(supervisor_flags flags,
                             std::vector<child_spec> specs) {
  flags_ = std::move(flags);
  restarts_ = restart_policy{flags_};
  component_ = "supervisor " + flags_.name;
  self_->attach_functor([live = live_](const caf::error&) {
    for (auto& child : *live)
      caf::anon_send_exit(child, caf::exit_reason::kill);
  });
  auto err = check_flags(flags_);
  std::set<child_id> ids;
  for (auto& spec : specs) {
    if (err)
      break;
    if (!ids.insert(spec.id).second)
      err = caf::make_error(sup_errc::invalid_child_spec, flags_.name,
                            caf::to_string(spec.id),
                            std::string{"duplicate child id"});
    else
      err = check_child_spec(spec, flags_.name);
  }
  if (err) {
    log::error(component_, "cannot start: " + describe(err));
    quit(std::move(err));
    return;
  }
  std::deque<step> steps;
  for (auto& spec : specs) {
    steps.push_back({step_kind::start, spec.id});
    children_.emplace_back(std::move(spec));
  }
  run_plan(std::move(steps), {}, [this](std::optional<start_failure> f) {
    if (f) {
      start_failed(*f);
      return;
    }
    started_ = true;
    auto n = children_.size();
    log::info(component_, "started " + std::to_string(n)
                            + (n == 1 ? " child (" : " children (")
                            + to_string(flags_.how) + ", at most "
                            + std::to_string(flags_.intensity) + " restarts in "
                            + format_duration(flags_.period) + ")");
    for (auto& rp : ready_waiters_)
      rp.deliver(caf::ok_atom_v);
    ready_waiters_.clear();
  });
  pump();
}

caf::typed_response_promise<caf::ok_atom> supervisor_state::ready() {
  auto rp = self_->make_response_promise<caf::ok_atom>();
  if (started_)
    rp.deliver(caf::ok_atom_v);
  else
    ready_waiters_.push_back(rp);
  return rp;
}

// -- message handlers ---------------------------------------------------------

void supervisor_state::on_down(caf::down_msg& msg) {
  if (auto w = std::get_if<awaiting_exit>(&waiting_);
      w && w->child == msg.source) {
    auto id = w->id;
    waiting_ = std::monostate{};
    if (auto child = find(id))
      stopped(*child, msg.reason);
  } else if (auto r = std::get_if<awaiting_ready>(&waiting_);
             r && r->child == msg.source) {
    auto id = r->id;
    waiting_ = std::monostate{};
    not_ready(id, std::move(msg.reason));
  } else {
    backlog_.emplace_back(child_exit{msg.source, std::move(msg.reason)});
  }
  pump();
}

void supervisor_state::on_exit_msg(caf::exit_msg& msg) {
  // Children are monitored, not linked: every exit message is a request to
  // stop. A normal one asks nothing, as everywhere in CAF.
  if (!msg.reason || msg.reason == caf::exit_reason::normal)
    return;
  backlog_.emplace_back(exit_request{std::move(msg.reason)});
  pump();
}

void supervisor_state::on_stop_timeout(uint64_t token) {
  auto w = std::get_if<awaiting_exit>(&waiting_);
  if (!w || w->timer != token)
    return; // that child went in time
  w->timer = 0;
  auto child = find(w->id);
  log::warning(component_,
               "child " + quoted(w->id) + " did not stop within "
                 + (child ? to_string(child->spec.shutdown) : "its timeout")
                 + "; killing it");
  self_->send_exit(w->child, caf::exit_reason::kill);
}

void supervisor_state::on_restart_due(child_id id, uint64_t token) {
  backlog_.emplace_back(restart_due{id, token});
  pump();
}

// -- the engine ---------------------------------------------------------------

void supervisor_state::pump() {
  // One thing at a time: the plan runs until it has to wait; between plans,
  // the backlog is served in arrival order.
  while (!quitting_) {
    if (plan_) {
      if (!std::holds_alternative<std::monostate>(waiting_))
        return;
      if (plan_->failure || plan_->steps.empty()) {
        auto finished = std::move(*plan_);
        plan_.reset();
        finished.done(std::move(finished.failure));
        continue;
      }
      auto next = plan_->steps.front();
      plan_->steps.pop_front();
      if (next.kind == step_kind::stop)
        begin_stop(next.id);
      else
        begin_start(next.id);
      continue;
    }
    if (backlog_.empty())
      return;
    auto next = std::move(backlog_.front());
    backlog_.pop_front();
    std::visit([this](auto& x) { handle(x); }, next);
  }
}

void supervisor_state::run_plan(
  std::deque<step> steps, std::string cause,
  std::function<void(std::optional<start_failure>)> done) {
  plan_ = plan{std::move(steps), std::nullopt, std::move(cause),
               std::move(done)};
}

void supervisor_state::handle(child_exit& x) {
  auto child = find(x.source);
  if (!child)
    return; // an incarnation already stopped or replaced
  forget_incarnation(*child);
  if (restart_policy::restarts(child->spec.restart, x.reason)) {
    restart(*child, x.reason);
    return;
  }
  auto id = child->spec.id;
  log::info(component_, "child " + quoted(id) + " exited: " + describe(x.reason)
                          + "; not restarted (" + to_string(child->spec.restart)
                          + ") " + window_note());
  if (child->spec.restart == restart_type::temporary)
    remove(id);
}

void supervisor_state::handle(exit_request& x) {
  log::info(component_, "asked to exit (" + describe(x.reason)
                          + "): stopping all children");
  stop_all_then_quit(std::move(x.reason));
}

void supervisor_state::handle(restart_due& x) {
  auto child = find(x.id);
  if (!child || child->due_token != x.token
      || child->status != child_status::restarting)
    return; // terminated, restarted or deleted meanwhile
  child->due_token = 0;
  run_restart(x.id);
}

void supervisor_state::handle(client_request& x) {
  x.serve();
}

// -- stopping a child ---------------------------------------------------------

void supervisor_state::begin_stop(child_id id) {
  auto child = find(id);
  if (!child)
    return;
  if (!child->handle) {
    // Nothing runs; a pending restart is called off.
    child->due_token = 0;
    child->status = child_status::stopped;
    if (child->spec.restart == restart_type::temporary)
      remove(id);
    return;
  }
  auto addr = child->handle.address();
  if (auto reason = take_queued_exit(addr)) {
    // It died before we asked (its down message waited in the backlog).
    stopped(*child, *reason);
    return;
  }
  auto& policy = child->spec.shutdown;
  uint64_t timer = 0;
  switch (policy.what()) {
    case shutdown_policy::kind::brutal_kill:
      self_->send_exit(child->handle, caf::exit_reason::kill);
      break;
    case shutdown_policy::kind::infinity:
      self_->send_exit(child->handle, caf::exit_reason::user_shutdown);
      break;
    case shutdown_policy::kind::timeout:
      self_->send_exit(child->handle, caf::exit_reason::user_shutdown);
      if (policy.time().count() == 0) {
        // OTP's `after 0`: whatever did not go at once is killed.
        self_->send_exit(child->handle, caf::exit_reason::kill);
        break;
      }
      timer = ++tokens_;
      self_->delayed_send(self_, policy.time(), stop_timeout_atom::value,
                          timer);
      break;
  }
  waiting_ = awaiting_exit{id, addr, timer};
}

void supervisor_state::stopped(child_record& child, const caf::error& reason) {
  // As OTP's shutdown/2: the reasons a stop is expected to end with; any
  // other one means the child died of something else first.
  auto expected = reason == caf::exit_reason::kill
                  || reason == caf::exit_reason::user_shutdown
                  || (child.spec.restart != restart_type::permanent
                      && is_normal_exit(reason));
  auto id = child.spec.id;
  if (expected)
    log::info(component_, "stopped child " + quoted(id));
  else
    log::warning(component_,
                 "child " + quoted(id)
                   + " stopped with an unexpected reason: " + describe(reason));
  forget_incarnation(child);
  if (child.spec.restart == restart_type::temporary)
    remove(id);
}

// -- starting a child ---------------------------------------------------------

void supervisor_state::begin_start(child_id id) {
  auto child = find(id);
  if (!child)
    return; // a temporary child that went away with an earlier stop
  auto incarnation = call_start(child->spec);
  if (!incarnation) {
    child->started_at.reset();
    log::error(component_, "failed to start child " + quoted(id) + ": "
                             + describe(incarnation.error()));
    plan_->failure = start_failure{id, std::move(incarnation.error())};
    return;
  }
  if (!*incarnation) {
    // OTP's `ignore`: the spec stays, nothing runs (a temporary one goes).
    log::info(component_, "child " + quoted(id) + " chose not to start");
    child->status = child_status::stopped;
    if (child->spec.restart == restart_type::temporary)
      remove(id);
    return;
  }
  adopt(*child, std::move(*incarnation));
  if (child->spec.await_ready)
    ask_ready(*child);
}

caf::expected<caf::actor> supervisor_state::call_start(const child_spec& spec) {
  try {
    return spec.start(self_->system());
  } catch (const std::exception& e) {
    return caf::make_error(sup_errc::start_function_threw,
                           std::string{e.what()});
  } catch (...) {
    return caf::make_error(sup_errc::start_function_threw,
                           std::string{"an exception of unknown type"});
  }
}

void supervisor_state::adopt(child_record& child, caf::actor handle) {
  auto id = child.spec.id;
  child.handle = std::move(handle);
  child.status = child_status::running;
  child.started_at = now();
  child.due_token = 0;
  self_->monitor(child.handle);
  live_->insert(child.handle.address());
  // After the monitor: see register_incarnation.
  if (child.spec.register_name)
    register_incarnation(self_->system(), id, child.handle);
  // A child that must say it is ready counts as started once it has.
  if (!child.spec.await_ready)
    report_started(id);
}

void supervisor_state::report_started(child_id id) {
  if (plan_->cause.empty())
    log::info(component_, "started child " + quoted(id));
  else
    log::info(component_, "restarted child " + quoted(id) + " " + plan_->cause);
}

void supervisor_state::ask_ready(child_record& child) {
  auto token = ++tokens_;
  waiting_ = awaiting_ready{child.spec.id, child.handle.address(), token};
  self_->request(child.handle, caf::infinite, ready_atom::value)
    .then([this, token](caf::ok_atom) { on_ready(token, caf::none); },
          [this, token](caf::error& err) { on_ready(token, std::move(err)); });
}

void supervisor_state::on_ready(uint64_t token, caf::error err) {
  auto r = std::get_if<awaiting_ready>(&waiting_);
  if (!r || r->token != token)
    return; // its down message came first
  // A child that exits before answering bounces the request with this
  // error; its down message follows with the reason worth reporting.
  if (err == caf::sec::request_receiver_down)
    return;
  auto id = r->id;
  waiting_ = std::monostate{};
  if (err)
    not_ready(id, std::move(err));
  else
    report_started(id);
  pump();
}

void supervisor_state::not_ready(child_id id, caf::error reason) {
  if (auto child = find(id)) {
    // The child says its start failed; make sure nothing of it lingers.
    if (child->handle) {
      self_->demonitor(child->handle.address());
      self_->send_exit(child->handle, caf::exit_reason::kill);
    }
    forget_incarnation(*child);
    child->started_at.reset();
  }
  log::error(component_,
             "failed to start child " + quoted(id) + ": " + describe(reason));
  plan_->failure = start_failure{id, std::move(reason)};
}

void supervisor_state::forget_incarnation(child_record& child) {
  if (child.handle) {
    auto addr = child.handle.address();
    live_->erase(addr);
    unregister_incarnation(self_->system(), child.spec.id, addr);
  }
  child.handle = nullptr;
  child.status = child_status::stopped;
}

// -- restarts -----------------------------------------------------------------

void supervisor_state::restart(child_record& child, const caf::error& reason) {
  auto id = child.spec.id;
  if (!within_limit(child, reason))
    return;
  auto delay = restart_policy::delay(child, now());
  auto note = window_note();
  auto text = "child " + quoted(id) + " exited: " + describe(reason)
              + "; restarting it"
              + (delay.count() > 0 ? " in " + format_duration(delay) : "") + " "
              + note;
  if (is_normal_exit(reason))
    log::info(component_, text);
  else
    log::warning(component_, text);
  child.restart_cause = "after child " + quoted(id)
                        + " exited: " + describe(reason) + " " + note;
  if (delay.count() > 0)
    schedule_restart(child, delay);
  else
    run_restart(id);
}

void supervisor_state::retry_later(child_record& child,
                                   const caf::error& reason) {
  // OTP's try_again_restart: a failed restart is itself a restart to retry,
  // through the mailbox so that other requests (a stop) get their turn.
  auto id = child.spec.id;
  if (!within_limit(child, reason))
    return;
  auto delay = restart_policy::delay(child, now());
  auto note = window_note();
  log::warning(component_,
               "will try to restart child " + quoted(id) + " again"
                 + (delay.count() > 0 ? " in " + format_duration(delay) : "")
                 + " " + note);
  child.restart_cause = "after child " + quoted(id)
                        + " failed to start: " + describe(reason) + " " + note;
  schedule_restart(child, delay);
}

bool supervisor_state::within_limit(child_record& child,
                                    const caf::error& reason) {
  if (restarts_.admit(now()))
    return true;
  log::error(component_, "child " + quoted(child.spec.id)
                           + " failed: " + describe(reason)
                           + "; restart limit reached " + window_note());
  give_up(child.spec.id, reason);
  return false;
}

void supervisor_state::schedule_restart(child_record& child,
                                        caf::timespan delay) {
  child.status = child_status::restarting;
  child.due_token = ++tokens_;
  if (delay.count() > 0)
    self_->delayed_send(self_, delay, restart_due_atom::value, child.spec.id,
                        child.due_token);
  else
    self_->send(self_, restart_due_atom::value, child.spec.id, child.due_token);
}

void supervisor_state::run_restart(child_id id) {
  auto trigger = find(id);
  auto cause = trigger ? trigger->restart_cause : std::string{};
  run_plan(restarts_.steps(children_, id), std::move(cause),
           [this](std::optional<start_failure> failure) {
             if (failure)
               restart_failed(*failure);
           });
}

void supervisor_state::restart_failed(const start_failure& failure) {
  // As OTP: the child that failed waits for the next attempt ("restarting");
  // the rest of its group stays stopped until that attempt restarts them.
  if (auto child = find(failure.id))
    retry_later(*child, failure.reason);
}

void supervisor_state::give_up(child_id id, const caf::error& reason) {
  auto err = make_restart_limit_error(flags_.name, id, flags_.intensity,
                                      flags_.period, reason);
  log::error(component_, describe(err) + "; stopping all children");
  stop_all_then_quit(std::move(err));
}

// -- stopping the supervisor --------------------------------------------------

void supervisor_state::start_failed(const start_failure& failure) {
  auto err = make_sup_error(sup_errc::start_failed, flags_.name, failure.id,
                            failure.reason);
  log::error(component_,
             describe(err) + "; stopping the children already started");
  stop_all_then_quit(std::move(err));
}

void supervisor_state::stop_all_then_quit(caf::error reason) {
  std::deque<step> steps;
  for (auto i = children_.rbegin(); i != children_.rend(); ++i)
    steps.push_back({step_kind::stop, i->spec.id});
  run_plan(std::move(steps), {},
           [this, reason](std::optional<start_failure>) { quit(reason); });
}

void supervisor_state::quit(caf::error reason) {
  quitting_ = true;
  for (auto& rp : ready_waiters_)
    rp.deliver(reason);
  ready_waiters_.clear();
  auto refusal = caf::make_error(sup_errc::supervisor_stopped, flags_.name,
                                 reason);
  for (auto& ev : backlog_)
    if (auto request = std::get_if<client_request>(&ev))
      request->refuse(refusal);
  backlog_.clear();
  log::info(component_, "exiting: " + describe(reason));
  self_->quit(std::move(reason));
}

// -- client operations --------------------------------------------------------

void supervisor_state::which_children(
  caf::typed_response_promise<std::vector<child_info>> rp) {
  std::vector<child_info> result;
  for (auto& c : children_)
    result.push_back(
      child_info{c.spec.id, c.handle, c.status, c.spec.type, c.spec.restart});
  rp.deliver(std::move(result));
}

void supervisor_state::count_children(
  caf::typed_response_promise<child_counts> rp) {
  child_counts result;
  for (auto& c : children_) {
    ++result.specs;
    if (c.handle)
      ++result.active;
    if (c.spec.type == child_type::supervisor)
      ++result.supervisors;
    else
      ++result.workers;
  }
  rp.deliver(result);
}

void supervisor_state::start_child(child_spec spec,
                                   caf::typed_response_promise<caf::actor> rp) {
  if (auto err = check_child_spec(spec, flags_.name)) {
    rp.deliver(std::move(err));
    return;
  }
  auto id = spec.id;
  if (auto existing = find(id)) {
    rp.deliver(sup_error(existing->handle ? sup_errc::child_already_started
                                          : sup_errc::child_already_present,
                         id));
    return;
  }
  children_.emplace_back(std::move(spec));
  run_plan({{step_kind::start, id}}, {},
           [this, id, rp](std::optional<start_failure> failure) mutable {
             if (failure) {
               // As OTP: a spec whose start failed is not kept.
               remove(id);
               rp.deliver(make_sup_error(sup_errc::start_failed, flags_.name,
                                         id, failure->reason));
               return;
             }
             auto child = find(id);
             rp.deliver(child ? child->handle : caf::actor{});
           });
}

void supervisor_state::terminate_child(
  child_id id, caf::typed_response_promise<caf::ok_atom> rp) {
  if (!find(id)) {
    rp.deliver(sup_error(sup_errc::child_not_found, id));
    return;
  }
  run_plan({{step_kind::stop, id}}, {},
           [rp](std::optional<start_failure>) mutable {
             rp.deliver(caf::ok_atom_v);
           });
}

void supervisor_state::restart_child(
  child_id id, caf::typed_response_promise<caf::actor> rp) {
  auto child = find(id);
  if (!child) {
    rp.deliver(sup_error(sup_errc::child_not_found, id));
    return;
  }
  if (child->handle) {
    rp.deliver(sup_error(sup_errc::child_running, id));
    return;
  }
  if (child->status == child_status::restarting) {
    rp.deliver(sup_error(sup_errc::child_restarting, id));
    return;
  }
  run_plan({{step_kind::start, id}}, {},
           [this, id, rp](std::optional<start_failure> failure) mutable {
             if (failure) {
               rp.deliver(make_sup_error(sup_errc::start_failed, flags_.name,
                                         id, failure->reason));
               return;
             }
             auto child = find(id);
             rp.deliver(child ? child->handle : caf::actor{});
           });
}

void supervisor_state::delete_child(
  child_id id, caf::typed_response_promise<caf::ok_atom> rp) {
  auto child = find(id);
  if (!child)
    rp.deliver(sup_error(sup_errc::child_not_found, id));
  else if (child->handle)
    rp.deliver(sup_error(sup_errc::child_running, id));
  else if (child->status == child_status::restarting)
    rp.deliver(sup_error(sup_errc::child_restarting, id));
  else {
    remove(id);
    rp.deliver(caf::ok_atom_v);
  }
}

// -- lookups and reports ------------------------------------------------------

child_record* supervisor_state::find(child_id id) {
  for (auto& c : children_)
    if (c.spec.id == id)
      return &c;
  return nullptr;
}

child_record* supervisor_state::find(const caf::actor_addr& addr) {
  for (auto& c : children_)
    if (c.handle && c.handle.address() == addr)
      return &c;
  return nullptr;
}

void supervisor_state::remove(child_id id) {
  children_.erase(std::remove_if(children_.begin(), children_.end(),
                                 [id](auto& c) { return c.spec.id == id; }),
                  children_.end());
}

std::optional<caf::error>
supervisor_state::take_queued_exit(const caf::actor_addr& addr) {
  for (auto i = backlog_.begin(); i != backlog_.end(); ++i)
    if (auto x = std::get_if<child_exit>(&*i); x && x->source == addr) {
      auto reason = std::move(x->reason);
      backlog_.erase(i);
      return reason;
    }
  return std::nullopt;
}

caf::error supervisor_state::sup_error(sup_errc code, child_id id) const {
  return make_sup_error(code, flags_.name, id);
}

std::string supervisor_state::describe(const caf::error& reason) const {
  return sup::describe(reason, self_->system());
}

std::string supervisor_state::window_note() {
  return "[restarts in the last " + format_duration(flags_.period) + ": "
         + std::to_string(restarts_.recent(now())) + ", limit "
         + std::to_string(flags_.intensity) + "]";
}

caf::actor_clock::time_point supervisor_state::now() const {
  // The actor's clock, never the system's: tests drive it.
  return self_->clock().now();
}

} // namespace mcfg::sup::detail
