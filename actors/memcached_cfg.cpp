#include "memcached_cfg/actors/memcached_cfg.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "memcached_cfg/actors/detail/attempt.hpp"
#include "memcached_cfg/actors/detail/writer_atoms.hpp"
#include "memcached_cfg/messages/duration.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/messages/log.hpp"

namespace mcfg {

namespace {

using detail::attempt_failure;
using detail::attempt_ticket;
using detail::deadline_atom;
using detail::io_done_atom;
using detail::retry_atom;
using detail::write_atom;

// The writer's full interface: the public one plus the messages it sends
// itself (and its pool jobs send it). Clients hold a memcached_cfg_actor and
// so cannot send these.
using writer_actor = memcached_cfg_actor::extend<
  caf::reacts_to<write_atom>, caf::reacts_to<retry_atom, uint64_t>,
  caf::reacts_to<io_done_atom, uint64_t, std::string, std::string, int32_t>,
  caf::reacts_to<deadline_atom, uint64_t>>;

using clock_time = caf::actor_clock::time_point;

std::string parent_directory(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos)
    return ".";
  if (pos == 0)
    return "/";
  return path.substr(0, pos);
}

/// Runs `job` on the pool after every job of this file's writers submitted
/// before it (writer_history::io).
void submit_io(const writer_spec& spec, std::function<void()> job) {
  io_strand::submit({spec.history, &spec.history->io}, *spec.pool,
                    std::move(job));
}

struct writer_state {
  static inline const char* name = "memcached_cfg";

  /// Shared with the embedder and the other incarnations of this file's
  /// writer (spawn_memcached_cfg): never changed, never copied per writer.
  std::shared_ptr<const writer_spec> spec;

  // Derived from the path when needed rather than stored: thousands of idle
  // writers are cheaper without three more strings each.
  std::string tmp_path() const {
    return spec->settings.effective_tmp_path();
  }
  std::string directory() const {
    return parent_directory(spec->settings.path);
  }
  std::string log_name() const {
    return "writer " + spec->settings.path;
  }
  std::unique_ptr<writer_module> module;
  /// Null while the file is in step (writer_trouble).
  std::unique_ptr<detail::writer_trouble> trouble;

  // The TimerRef equivalent: the id of the one live retry timer, 0 for
  // none. Cancelling clears it, so a retry that still arrives finds no
  // match and is dropped.
  uint64_t retry_timer = 0;
  /// The last id given to a retry timer or an attempt (never 0).
  uint64_t last_id = 0;

  clock_time last_change;
  /// Since when the write owed now has been owed.
  clock_time owed_since;
  /// Meaningful once `writes` > 0.
  clock_time last_write;

  /// The attempt the pool runs now, if any (writers with a pool only).
  std::shared_ptr<attempt_ticket> in_flight;

  /// Failed attempts since the last change.
  uint32_t attempts = 0;
  bool write_owed = false;
  /// A `write` is in our mailbox or on its way (a burst's held write);
  /// changes queued before it are coalesced.
  bool write_queued = false;
  /// More work arrived while the last attempt ran: the next one is held
  /// (writer_settings::coalesce_quiet).
  bool burst = false;
  /// New work came while `in_flight` ran (then another attempt follows)...
  bool changed_in_flight = false;
  /// ...before its rename began: its content was stale once in place.
  bool missed_by_flight = false;

  uint64_t changes = 0;
  uint64_t ignored = 0;
  uint64_t writes = 0;
  uint64_t failed_attempts = 0;

  /// The source version the module's state reflects.
  uint64_t state_version = 0;
  /// The source version the file holds; 0 until this incarnation wrote it.
  uint64_t file_version = 0;

  /// A sync waiting for the file: for a version, or (none) for no write owed.
  struct held_sync {
    std::optional<uint64_t> version;
    caf::typed_response_promise<caf::ok_atom> promise;
  };
  std::vector<held_sync> held_syncs;

  detail::writer_trouble& troubled() {
    if (!trouble)
      trouble = std::make_unique<detail::writer_trouble>();
    return *trouble;
  }

  bool refused() const {
    return trouble && trouble->refusal;
  }

  ~writer_state() {
    // Runs on every exit the actor runs code for: giving up, an exit message
    // (shutdown), a kill from the supervisor. The temp file may hold the
    // newest secrets; only a kill of the whole process leaves it, for the
    // next start to remove.
    if (!spec)
      return; // never started
    if (!leave_tmp_file_to_job())
      remove_tmp_file();
    // Killed from outside (no chance to say why): a sync must not hang.
    fail_held_syncs(caf::make_error(errc::writer_stopped, spec->settings.path));
  }

  /// Delivers `answer` to the held syncs that `due` selects and drops them.
  template <class Answer, class Predicate>
  void settle_held_syncs(const Answer& answer, Predicate due) {
    auto i = held_syncs.begin();
    while (i != held_syncs.end()) {
      if (due(*i)) {
        i->promise.deliver(answer);
        i = held_syncs.erase(i);
      } else {
        ++i;
      }
    }
  }

  /// An attempt still running in the pool is given up on: its job then
  /// removes the temp file when it ends. False when none runs.
  bool leave_tmp_file_to_job() {
    if (!in_flight)
      return false;
    std::lock_guard<std::mutex> guard{in_flight->mtx};
    in_flight->abandoned = !in_flight->finished;
    return in_flight->abandoned;
  }

  /// Inline, or as a pool job after any job of this file still running.
  void remove_tmp_file() {
    auto remove = [files = spec->files, tmp = tmp_path(), name = log_name()] {
      if (auto ec = files->remove(tmp))
        log::warning(name,
                     describe(make_file_error("unlink", tmp, ec.value())));
    };
    if (!spec->pool) {
      remove();
      return;
    }
    submit_io(*spec, std::move(remove));
  }

  void fail_held_syncs(const caf::error& reason) {
    settle_held_syncs(reason, [](const held_sync&) { return true; });
  }

  /// The file now holds `file_version` and no write is owed.
  void answer_held_syncs() {
    settle_held_syncs(caf::ok_atom::value, [this](const held_sync& x) {
      return !x.version || *x.version <= file_version;
    });
  }

  void rebuild_module() {
    auto source = spec->read_snapshot();
    module = spec->make_module();
    module->init(source.values);
    state_version = source.version;
  }
};

using writer_self = writer_actor::stateful_pointer<writer_state>;

/// Queues a `write` behind what is in the mailbox, unless one is queued.
void queue_write(writer_self self) {
  auto& st = self->state;
  if (!st.write_queued) {
    st.write_queued = true;
    self->send(self, write_atom::value);
  }
}

/// New work (a change, reload_file, full_reset, start-up): cancel the retry
/// timer, restart the deadline, and owe a write of the latest state.
void new_work(writer_self self) {
  auto& st = self->state;
  st.retry_timer = 0;
  st.last_change = self->clock().now();
  st.attempts = 0;
  if (!st.write_owed)
    st.owed_since = st.last_change;
  st.write_owed = true;
  if (st.in_flight) {
    st.changed_in_flight = true; // the attempt renders an older state
    if (!st.missed_by_flight && !st.in_flight->renaming())
      st.missed_by_flight = true;
  }
  queue_write(self);
}

/// In a burst, holds the owed write until no change has come for
/// coalesce_quiet (or coalesce_max since it became owed): true while held,
/// with a `write` queued for the moment it is due.
bool hold_for_burst(writer_self self) {
  auto& st = self->state;
  if (!st.burst)
    return false;
  auto& settings = st.spec->settings;
  auto due = std::min(st.last_change + settings.coalesce_quiet,
                      st.owed_since + settings.coalesce_max);
  auto now = self->clock().now();
  if (now >= due)
    return false;
  st.write_queued = true;
  self->delayed_send(self, due - now, write_atom::value);
  return true;
}

void arm_retry_timer(writer_self self) {
  auto& st = self->state;
  auto id = ++st.last_id;
  st.retry_timer = id;
  self->delayed_send(self, st.spec->settings.retry_interval, retry_atom::value,
                     id);
}

/// Steps 1-4 of a write: directory, temp file, rename, directory fsync.
/// `enter(step)` is told each step before it starts, and may refuse it
/// (returns false: a pool job its writer gave up on takes no further step,
/// and above all renames nothing; the fsync is past the rename).
template <class Enter>
std::optional<attempt_failure>
replace_file(file_port& files, const writer_settings& settings,
             const std::string& bytes, Enter enter) {
  auto dir = parent_directory(settings.path);
  auto tmp = settings.effective_tmp_path();
  auto canceled = std::make_error_code(std::errc::operation_canceled);
  if (!enter("mkdir"))
    return attempt_failure{"mkdir", dir, canceled};
  if (auto ec = files.make_directories(dir))
    return attempt_failure{"mkdir", dir, ec};
  if (!enter("write"))
    return attempt_failure{"write", tmp, canceled};
  if (auto ec = files.write_file(tmp, bytes, settings.mode, settings.durable))
    return attempt_failure{"write", tmp, ec};
  if (!enter("rename"))
    return attempt_failure{"rename", tmp + " -> " + settings.path, canceled};
  if (auto ec = files.rename(tmp, settings.path))
    return attempt_failure{"rename", tmp + " -> " + settings.path, ec};
  if (settings.durable) {
    // The new content is in place either way; only whether the rename
    // survives a power cut is in doubt, so this is no reason to retry.
    enter("fsync");
    if (auto ec = files.sync_directory(dir))
      log::warning("writer " + settings.path,
                   describe(make_file_error("fsync", dir, ec.value())));
  }
  return std::nullopt;
}

/// The file holds `version` now: counted, refreshed, and the record of
/// failures across incarnations cleared.
void record_write(writer_self self, bool wrote, uint64_t version) {
  auto& st = self->state;
  st.file_version = version;
  if (wrote) {
    ++st.writes;
    st.last_write = self->clock().now();
    if (st.attempts > 0)
      log::info(st.log_name(), "written after " + std::to_string(st.attempts)
                                 + " failed attempts");
    if (st.spec->refresh)
      st.spec->refresh(st.file_version);
  }
  auto& history = *st.spec->history;
  if (history.give_ups > 0)
    log::info(st.log_name(), "in step again after "
                               + std::to_string(history.give_ups)
                               + " restarts");
  history.give_ups = 0;
  history.failing_since.reset();
  history.last_give_up.clear();
}

void on_success(writer_self self, bool wrote) {
  auto& st = self->state;
  record_write(self, wrote, st.state_version);
  st.retry_timer = 0;
  st.write_owed = false;
  st.attempts = 0;
  st.trouble.reset();
  st.answer_held_syncs();
}

/// The temp file goes with the state (its destructor), as on any exit.
void give_up(writer_self self, const attempt_failure& failure) {
  auto& st = self->state;
  auto& settings = st.spec->settings;
  auto reason = caf::make_error(errc::write_deadline_exceeded, settings.path,
                                std::string{failure.operation}, failure.path,
                                failure.what(),
                                format_duration(settings.deadline));
  auto& history = *st.spec->history;
  ++history.give_ups;
  history.last_give_up = describe(reason);
  // A fault that outlives incarnations must say for how long it has lasted
  // and how often the writer was restarted for it.
  auto now = self->clock().now();
  auto failing_for = std::chrono::duration_cast<std::chrono::milliseconds>(
    now - history.failing_since.value_or(now));
  log::error(st.log_name(), history.last_give_up + " (failing for "
                              + format_duration(failing_for) + ", give-up "
                              + std::to_string(history.give_ups)
                              + " since the file was last written)");
  st.fail_held_syncs(reason);
  self->quit(reason);
}

void on_failure(writer_self self, const attempt_failure& failure) {
  auto& st = self->state;
  ++st.attempts;
  ++st.failed_attempts;
  auto& trouble = st.troubled();
  trouble.last_failure = failure;
  trouble.last_error = describe(
    make_file_error(failure.operation, failure.path, failure.os_error.value()));
  if (!st.spec->history->failing_since)
    st.spec->history->failing_since = self->clock().now();
  if (self->clock().now() - st.last_change >= st.spec->settings.deadline) {
    give_up(self, failure);
    return;
  }
  if (st.attempts == 1)
    log::warning(st.log_name(),
                 trouble.last_error + "; retrying every "
                   + format_duration(st.spec->settings.retry_interval)
                   + " for up to "
                   + format_duration(st.spec->settings.deadline));
  else
    log::debug(st.log_name(), trouble.last_error + " (attempt "
                                + std::to_string(st.attempts) + ")");
  arm_retry_timer(self);
}

void on_refused(writer_self self, const std::string& reason) {
  auto& st = self->state;
  st.retry_timer = 0;
  st.write_owed = false;
  st.attempts = 0;
  auto& trouble = st.troubled();
  trouble.refusal = caf::make_error(errc::invalid_content,
                                    st.spec->settings.path, reason);
  trouble.last_error = describe(trouble.refusal);
  log::error(st.log_name(), trouble.last_error + "; the file in place is kept");
  // A sync for a version not received yet may still be answered by it.
  st.settle_held_syncs(trouble.refusal,
                       [&st](const writer_state::held_sync& x) {
                         return !x.version || *x.version <= st.state_version;
                       });
}

/// A pool job, in the file's strand: the steps of `ticket`'s attempt, then
/// the outcome to `writer`; if the writer gave up on it meanwhile (even
/// before it began), no further step and no message, and the temp file goes.
void run_attempt(attempt_ticket& ticket, file_port& files,
                 const writer_settings& settings, const std::string& bytes,
                 const writer_actor& writer) {
  std::optional<attempt_failure> failure;
  auto enter = [&ticket](const char* step) {
    std::lock_guard<std::mutex> guard{ticket.mtx};
    ticket.step = step;
    return !ticket.abandoned;
  };
  try {
    failure = replace_file(files, settings, bytes, enter);
  } catch (...) { // a port that throws (a bug): the attempt failed
    failure = attempt_failure{"write", settings.effective_tmp_path(),
                              std::make_error_code(std::errc::io_error)};
  }
  {
    // Sent under the ticket's lock: once the writer's state is gone (it
    // marks the ticket abandoned under this lock), no job sends to it, so
    // none outlives the actor system in the middle of a send.
    std::lock_guard<std::mutex> guard{ticket.mtx};
    ticket.finished = true;
    if (!ticket.abandoned) {
      std::string op = failure ? failure->operation : "";
      std::string where = failure ? failure->path : "";
      auto err = failure ? static_cast<int32_t>(failure->os_error.value()) : 0;
      caf::anon_send(writer, io_done_atom::value, ticket.id, std::move(op),
                     std::move(where), err);
      return;
    }
  }
  files.remove(settings.effective_tmp_path());
}

/// Wakes the writer when the deadline of the attempt in flight is due
/// (since the last change: a change while it runs moves it), or one retry
/// interval from now if that is later.
void arm_deadline(writer_self self) {
  auto& st = self->state;
  auto due = st.last_change + st.spec->settings.deadline;
  // A retry submitted past the deadline gets one retry interval to return:
  // its outcome decides, as inline, unless it is stuck.
  auto wait = std::max(due - self->clock().now(),
                       st.spec->settings.retry_interval);
  self->delayed_send(self, wait, deadline_atom::value, st.in_flight->id);
}

/// Hands the attempt of `bytes` (the current state) to the pool.
void submit_attempt(writer_self self, std::string bytes) {
  auto& st = self->state;
  auto ticket = std::make_shared<attempt_ticket>();
  ticket->id = ++st.last_id;
  ticket->version = st.state_version;
  ticket->started = self->clock().now();
  st.in_flight = ticket;
  st.changed_in_flight = false;
  st.missed_by_flight = false;
  arm_deadline(self);
  // Not the spec: it holds the pool, whose last owner must never be one of
  // its own jobs (its destructor joins its threads).
  submit_io(*st.spec, [ticket, files = st.spec->files,
                       settings = st.spec->settings, bytes = std::move(bytes),
                       writer = caf::actor_cast<writer_actor>(self)] {
    run_attempt(*ticket, *files, settings, bytes, writer);
  });
}

void attempt(writer_self self);

/// The name a failed step goes by (the job sends it as text).
const char* step_name(const std::string& op) {
  for (auto* step : {"mkdir", "write", "rename"})
    if (op == step)
      return step;
  return "write";
}

/// The pool's outcome of attempt `id`. The file holds the version it
/// rendered; with new work since, the next attempt starts at once.
void on_attempt_done(writer_self self, uint64_t id, const std::string& op,
                     const std::string& path, int32_t os_errno) {
  auto& st = self->state;
  if (!st.in_flight || st.in_flight->id != id)
    return; // cannot happen: a writer gives up only by exiting
  auto version = st.in_flight->version;
  auto started = st.in_flight->started;
  st.in_flight.reset();
  st.burst = st.missed_by_flight;
  if (!op.empty()) {
    on_failure(self, attempt_failure{step_name(op), path,
                                     std::error_code{os_errno,
                                                     std::generic_category()}});
    return;
  }
  if (!st.changed_in_flight) {
    on_success(self, true);
    return;
  }
  record_write(self, true, version);
  st.owed_since = started; // what is owed now came since
  st.settle_held_syncs(caf::ok_atom::value,
                       [&st](const writer_state::held_sync& x) {
                         return x.version && *x.version <= st.file_version;
                       });
  queue_write(self); // held while the burst goes on
}

/// The deadline of attempt `id` is due: if it still runs, the writer gives
/// up on it (its job renames nothing when it returns). False for a stale
/// timer, which changes nothing (every write leaves one behind).
bool on_deadline(writer_self self, uint64_t id) {
  auto& st = self->state;
  if (!st.in_flight || st.in_flight->id != id)
    return false; // that attempt ended
  auto now = self->clock().now();
  if (now - st.last_change < st.spec->settings.deadline) {
    arm_deadline(self); // a change while it ran moved the deadline
    return true;
  }
  if (st.attempts > 0 && st.trouble && st.trouble->last_failure) {
    // A retry of a failure is what runs: the failure is the news, as when
    // attempts run inline and the last one fails at the deadline.
    give_up(self, *st.trouble->last_failure);
    return true;
  }
  const char* step = nullptr;
  {
    std::lock_guard<std::mutex> guard{st.in_flight->mtx};
    step = st.in_flight->step;
  }
  auto stuck = std::chrono::duration_cast<std::chrono::milliseconds>(
    now - st.in_flight->started);
  if (!st.spec->history->failing_since)
    st.spec->history->failing_since = st.in_flight->started;
  give_up(self,
          attempt_failure{"attempt", st.spec->settings.path,
                          std::make_error_code(std::errc::timed_out),
                          "still in progress after " + format_duration(stuck)
                            + " (step: " + step + ")"});
  return true;
}

/// One write attempt, always of the current state.
void attempt(writer_self self) {
  auto& st = self->state;
  auto out = st.module->produce();
  switch (out.what()) {
    case rendering::kind::refused:
      on_refused(self, out.text());
      return;
    case rendering::kind::nothing:
      on_success(self, false);
      return;
    case rendering::kind::content:
      break;
  }
  if (st.spec->pool) {
    submit_attempt(self, out.text());
    return;
  }
  // Work that came before the rename began makes it a burst; looked at
  // then, not after the rename, which a reader may answer with the next
  // change at once.
  bool looked = false;
  auto look = [&] {
    st.burst = !self->mailbox().empty();
    looked = true;
  };
  auto failure = replace_file(*st.spec->files, st.spec->settings, out.text(),
                              [&](const char* step) {
                                if (std::strcmp(step, "rename") == 0)
                                  look();
                                return true;
                              });
  if (!looked)
    look();
  if (failure)
    on_failure(self, *failure);
  else
    on_success(self, true);
}

/// Applies every change of `update` before anything may be written, so the
/// file renders one whole version. A version the state already reflects (it
/// was in the snapshot read at init or full_reset) is dropped: applying it
/// again could undo a newer one.
void on_update(writer_self self, const config_update& update) {
  auto& st = self->state;
  if (update.version <= st.state_version) {
    log::debug(st.log_name(),
               "dropped update to version " + std::to_string(update.version)
                 + ", already at " + std::to_string(st.state_version));
    return;
  }
  bool changed = false;
  for (auto& change : update.changes)
    if (st.module->filter_event(change.key) && st.module->handle_event(change))
      changed = true;
  st.state_version = update.version;
  if (changed) {
    ++st.changes;
    new_work(self);
    return;
  }
  ++st.ignored;
  // Nothing of ours changed: a file that is current renders this version too.
  if (!st.write_owed && !st.refused()) {
    st.file_version = st.state_version;
    st.answer_held_syncs();
  }
}

caf::result<caf::ok_atom> on_sync(writer_self self,
                                  std::optional<uint64_t> version) {
  auto& st = self->state;
  if (version && st.file_version >= *version)
    return caf::ok_atom::value;
  // Held while a write is owed, or until a version not received yet arrives.
  if (st.write_owed || (version && *version > st.state_version)) {
    auto promise = self->make_response_promise<caf::ok_atom>();
    st.held_syncs.push_back({version, promise});
    return promise;
  }
  if (st.refused())
    return st.trouble->refusal;
  return caf::ok_atom::value;
}

writer_status make_status(writer_self self) {
  auto& st = self->state;
  writer_status out;
  out.path = st.spec->settings.path;
  out.applied_version = st.file_version;
  out.phase = st.retry_timer
                ? writer_phase::retrying
                : (st.write_owed ? writer_phase::pending : writer_phase::idle);
  out.attempts = st.attempts;
  out.retry_timer = st.retry_timer;
  if (st.trouble)
    out.last_error = st.trouble->last_error;
  auto now = self->clock().now();
  out.since_last_change = now - st.last_change;
  if (st.writes > 0)
    out.since_last_write = now - st.last_write;
  out.changes = st.changes;
  out.ignored = st.ignored;
  out.writes = st.writes;
  out.failed_attempts = st.failed_attempts;
  out.module = st.module->format_status();
  auto& history = *st.spec->history;
  out.restarts = history.give_ups;
  out.last_give_up = history.last_give_up;
  if (history.failing_since)
    out.failing_for = now - *history.failing_since;
  if (st.in_flight) {
    out.attempt_running_for = now - st.in_flight->started;
    std::lock_guard<std::mutex> guard{st.in_flight->mtx};
    out.attempt_step = st.in_flight->step;
  }
  return out;
}

/// Tells the embedder (writer_spec::publish) what status would answer now.
void publish(writer_self self) {
  auto& st = self->state;
  if (st.spec->publish)
    st.spec->publish(make_status(self), self->clock().now());
}

writer_actor::behavior_type writer(writer_self self,
                                   std::shared_ptr<const writer_spec> spec) {
  auto& st = self->state;
  st.spec = std::move(spec);
  if (st.spec->subscribe)
    st.spec->subscribe(memcached_cfg_actor{self});
  st.rebuild_module();
  // A dead incarnation may have left its temp file behind (with a pool,
  // removed by a job: nothing here touches the disk).
  if (st.spec->pool)
    st.remove_tmp_file();
  else if (st.spec->files->exists(st.tmp_path())) {
    if (auto ec = st.spec->files->remove(st.tmp_path()))
      log::warning(st.log_name(), describe(make_file_error(
                                    "unlink", st.tmp_path(), ec.value())));
    else
      log::info(st.log_name(), "removed leftover temp file " + st.tmp_path());
  }
  new_work(self);
  publish(self);
  // Every handler that may change what status says publishes it.
  return {
    [=](change_atom, const config_update& update) {
      on_update(self, update);
      publish(self);
    },
    [=](write_atom) {
      auto& st = self->state;
      st.write_queued = false;
      // With an attempt in flight the next one follows its outcome.
      if (st.write_owed && !st.in_flight && !hold_for_burst(self))
        attempt(self);
      publish(self);
    },
    [=](retry_atom, uint64_t id) {
      auto& st = self->state;
      if (st.retry_timer != id) {
        log::debug(st.log_name(),
                   "dropped cancelled retry timer " + std::to_string(id));
        return;
      }
      st.retry_timer = 0;
      if (!st.in_flight)
        attempt(self);
      publish(self);
    },
    [=](io_done_atom, uint64_t id, const std::string& op,
        const std::string& path, int32_t os_errno) {
      on_attempt_done(self, id, op, path, os_errno);
      publish(self);
    },
    [=](deadline_atom, uint64_t id) {
      if (on_deadline(self, id))
        publish(self);
    },
    [=](sync_atom) -> caf::result<caf::ok_atom> {
      return on_sync(self, std::nullopt);
    },
    [=](sync_atom, uint64_t version) -> caf::result<caf::ok_atom> {
      return on_sync(self, version);
    },
    [=](reload_atom) {
      new_work(self);
      publish(self);
    },
    [=](reset_atom) {
      self->state.rebuild_module();
      new_work(self);
      publish(self);
    },
    [=](status_atom) { return make_status(self); },
  };
}

} // namespace

memcached_cfg_actor
spawn_memcached_cfg(caf::actor_system& sys,
                    std::shared_ptr<const writer_spec> spec) {
  if (!spec || spec->settings.path.empty())
    throw std::invalid_argument("memcached_cfg: settings.path is empty");
  if (!spec->make_module || !spec->read_snapshot)
    throw std::invalid_argument(
      "memcached_cfg: make_module and read_snapshot are required");
  if (!spec->files || !spec->history) {
    auto filled = std::make_shared<writer_spec>(*spec);
    if (!filled->files) {
      // The POSIX port holds no state: one serves every writer.
      static const auto posix = make_posix_file_port();
      filled->files = posix;
    }
    if (!filled->history)
      filled->history = std::make_shared<writer_history>();
    spec = std::move(filled);
  }
  if (spec->detached)
    return sys.spawn<caf::detached>(writer, std::move(spec));
  return sys.spawn(writer, std::move(spec));
}

memcached_cfg_actor spawn_memcached_cfg(caf::actor_system& sys,
                                        writer_spec spec) {
  return spawn_memcached_cfg(
    sys, std::make_shared<const writer_spec>(std::move(spec)));
}

} // namespace mcfg
