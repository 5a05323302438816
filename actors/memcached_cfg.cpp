#include "memcached_cfg/actors/memcached_cfg.hpp"

#include <optional>
#include <stdexcept>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "memcached_cfg/actors/detail/writer_atoms.hpp"
#include "memcached_cfg/messages/duration.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/messages/log.hpp"

namespace mcfg {

namespace {

using detail::retry_atom;
using detail::write_atom;

// The writer's full interface: the public one plus the messages it sends
// itself. Clients hold a memcached_cfg_actor and so cannot send these.
using writer_actor = memcached_cfg_actor::extend<
  caf::reacts_to<write_atom>, caf::reacts_to<retry_atom, uint64_t>>;

using clock_time = caf::actor_clock::time_point;

/// Which step of an attempt failed, on which path, and what the OS said.
struct attempt_failure {
  const char* operation;
  std::string path;
  std::error_code os_error;
};

std::string parent_directory(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos)
    return ".";
  if (pos == 0)
    return "/";
  return path.substr(0, pos);
}

struct writer_state {
  static inline const char* name = "memcached_cfg";

  writer_spec spec;

  // Derived from the path when needed rather than stored: thousands of idle
  // writers are cheaper without three more strings each.
  std::string tmp_path() const {
    return spec.settings.effective_tmp_path();
  }
  std::string directory() const {
    return parent_directory(spec.settings.path);
  }
  std::string log_name() const {
    return "writer " + spec.settings.path;
  }
  std::unique_ptr<writer_module> module;

  // The TimerRef equivalent: the id of the one live retry timer. Cancelling
  // clears it, so a retry that still arrives finds no match and is dropped.
  std::optional<uint64_t> retry_timer;
  uint64_t last_timer_id = 0;

  bool write_owed = false;
  /// A `write` is in our mailbox; changes queued before it are coalesced.
  bool write_queued = false;
  clock_time last_change;
  std::optional<clock_time> last_write;
  /// Failed attempts since the last change.
  uint32_t attempts = 0;
  std::string last_error;
  /// Set while the module refuses to render its state.
  caf::error refusal;

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

  ~writer_state() {
    // Runs on every exit the actor runs code for: giving up, an exit message
    // (shutdown), a kill from the supervisor. The temp file may hold the
    // newest secrets; only a kill of the whole process leaves it, for the
    // next start to remove.
    if (spec.files)
      remove_tmp_file();
    // Killed from outside (no chance to say why): a sync must not hang.
    fail_held_syncs(caf::make_error(errc::writer_stopped, spec.settings.path));
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

  void remove_tmp_file() {
    if (auto ec = spec.files->remove(tmp_path()))
      log::warning(log_name(),
                   describe(make_file_error("unlink", tmp_path(), ec.value())));
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
    auto source = spec.read_snapshot();
    module = spec.make_module();
    module->init(source.values);
    state_version = source.version;
  }
};

using writer_self = writer_actor::stateful_pointer<writer_state>;

/// New work (a change, reload_file, full_reset, start-up): cancel the retry
/// timer, restart the deadline, and owe a write of the latest state.
void new_work(writer_self self) {
  auto& st = self->state;
  st.retry_timer.reset();
  st.last_change = self->clock().now();
  st.attempts = 0;
  st.write_owed = true;
  if (!st.write_queued) {
    st.write_queued = true;
    self->send(self, write_atom::value);
  }
}

void arm_retry_timer(writer_self self) {
  auto& st = self->state;
  auto id = ++st.last_timer_id;
  st.retry_timer = id;
  self->delayed_send(self, st.spec.settings.retry_interval, retry_atom::value,
                     id);
}

/// Steps 1-4 of a write: directory, temp file, rename, directory fsync.
std::optional<attempt_failure> replace_file(writer_state& st,
                                            const std::string& bytes) {
  auto& settings = st.spec.settings;
  auto& files = *st.spec.files;
  auto dir = st.directory();
  auto tmp = st.tmp_path();
  if (auto ec = files.make_directories(dir))
    return attempt_failure{"mkdir", dir, ec};
  if (auto ec = files.write_file(tmp, bytes, settings.mode, settings.durable))
    return attempt_failure{"write", tmp, ec};
  if (auto ec = files.rename(tmp, settings.path))
    return attempt_failure{"rename", tmp + " -> " + settings.path, ec};
  if (settings.durable) {
    // The new content is in place either way; only whether the rename
    // survives a power cut is in doubt, so this is no reason to retry.
    if (auto ec = files.sync_directory(dir))
      log::warning(st.log_name(),
                   describe(make_file_error("fsync", dir, ec.value())));
  }
  return std::nullopt;
}

void on_success(writer_self self, bool wrote) {
  auto& st = self->state;
  st.file_version = st.state_version;
  if (wrote) {
    ++st.writes;
    st.last_write = self->clock().now();
    if (st.attempts > 0)
      log::info(st.log_name(), "written after " + std::to_string(st.attempts)
                                 + " failed attempts");
    if (st.spec.refresh)
      st.spec.refresh(st.file_version);
  }
  auto& history = *st.spec.history;
  if (history.give_ups > 0)
    log::info(st.log_name(), "in step again after "
                               + std::to_string(history.give_ups)
                               + " restarts");
  history = writer_history{};
  st.retry_timer.reset();
  st.write_owed = false;
  st.attempts = 0;
  st.last_error.clear();
  st.refusal = caf::error{};
  st.answer_held_syncs();
}

/// The temp file goes with the state (its destructor), as on any exit.
void give_up(writer_self self, const attempt_failure& failure) {
  auto& st = self->state;
  auto& settings = st.spec.settings;
  auto reason = caf::make_error(errc::write_deadline_exceeded, settings.path,
                                std::string{failure.operation}, failure.path,
                                failure.os_error.message(),
                                format_duration(settings.deadline));
  auto& history = *st.spec.history;
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
  st.last_error = describe(
    make_file_error(failure.operation, failure.path, failure.os_error.value()));
  if (!st.spec.history->failing_since)
    st.spec.history->failing_since = self->clock().now();
  if (self->clock().now() - st.last_change >= st.spec.settings.deadline) {
    give_up(self, failure);
    return;
  }
  if (st.attempts == 1)
    log::warning(st.log_name(),
                 st.last_error + "; retrying every "
                   + format_duration(st.spec.settings.retry_interval)
                   + " for up to "
                   + format_duration(st.spec.settings.deadline));
  else
    log::debug(st.log_name(), st.last_error + " (attempt "
                                + std::to_string(st.attempts) + ")");
  arm_retry_timer(self);
}

void on_refused(writer_self self, const std::string& reason) {
  auto& st = self->state;
  st.retry_timer.reset();
  st.write_owed = false;
  st.attempts = 0;
  st.refusal = caf::make_error(errc::invalid_content, st.spec.settings.path,
                               reason);
  st.last_error = describe(st.refusal);
  log::error(st.log_name(), st.last_error + "; the file in place is kept");
  // A sync for a version not received yet may still be answered by it.
  st.settle_held_syncs(st.refusal, [&st](const writer_state::held_sync& x) {
    return !x.version || *x.version <= st.state_version;
  });
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
  if (auto failure = replace_file(st, out.text()))
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
  if (!st.write_owed && !st.refusal) {
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
  if (st.refusal)
    return st.refusal;
  return caf::ok_atom::value;
}

writer_status make_status(writer_self self) {
  auto& st = self->state;
  writer_status out;
  out.path = st.spec.settings.path;
  out.applied_version = st.file_version;
  out.phase = st.retry_timer
                ? writer_phase::retrying
                : (st.write_owed ? writer_phase::pending : writer_phase::idle);
  out.attempts = st.attempts;
  out.retry_timer = st.retry_timer.value_or(0);
  out.last_error = st.last_error;
  auto now = self->clock().now();
  out.since_last_change = now - st.last_change;
  if (st.last_write)
    out.since_last_write = now - *st.last_write;
  out.changes = st.changes;
  out.ignored = st.ignored;
  out.writes = st.writes;
  out.failed_attempts = st.failed_attempts;
  out.module = st.module->format_status();
  auto& history = *st.spec.history;
  out.restarts = history.give_ups;
  out.last_give_up = history.last_give_up;
  if (history.failing_since)
    out.failing_for = now - *history.failing_since;
  return out;
}

writer_actor::behavior_type writer(writer_self self, writer_spec spec) {
  auto& st = self->state;
  st.spec = std::move(spec);
  if (st.spec.subscribe)
    st.spec.subscribe(memcached_cfg_actor{self});
  st.rebuild_module();
  // A dead incarnation may have left its temp file behind.
  if (st.spec.files->exists(st.tmp_path())) {
    if (auto ec = st.spec.files->remove(st.tmp_path()))
      log::warning(st.log_name(), describe(make_file_error(
                                    "unlink", st.tmp_path(), ec.value())));
    else
      log::info(st.log_name(), "removed leftover temp file " + st.tmp_path());
  }
  new_work(self);
  return {
    [=](change_atom, const config_update& update) { on_update(self, update); },
    [=](write_atom) {
      auto& st = self->state;
      st.write_queued = false;
      if (st.write_owed)
        attempt(self);
    },
    [=](retry_atom, uint64_t id) {
      auto& st = self->state;
      if (st.retry_timer != id) {
        log::debug(st.log_name(),
                   "dropped cancelled retry timer " + std::to_string(id));
        return;
      }
      st.retry_timer.reset();
      attempt(self);
    },
    [=](sync_atom) -> caf::result<caf::ok_atom> {
      return on_sync(self, std::nullopt);
    },
    [=](sync_atom, uint64_t version) -> caf::result<caf::ok_atom> {
      return on_sync(self, version);
    },
    [=](reload_atom) { new_work(self); },
    [=](reset_atom) {
      self->state.rebuild_module();
      new_work(self);
    },
    [=](status_atom) { return make_status(self); },
  };
}

} // namespace

memcached_cfg_actor spawn_memcached_cfg(caf::actor_system& sys,
                                        writer_spec spec) {
  if (spec.settings.path.empty())
    throw std::invalid_argument("memcached_cfg: settings.path is empty");
  if (!spec.make_module || !spec.read_snapshot)
    throw std::invalid_argument(
      "memcached_cfg: make_module and read_snapshot are required");
  if (!spec.files) {
    // The POSIX port holds no state: one serves every writer.
    static const auto posix = make_posix_file_port();
    spec.files = posix;
  }
  if (!spec.history)
    spec.history = std::make_shared<writer_history>();
  if (spec.detached)
    return sys.spawn<caf::detached>(writer, std::move(spec));
  return sys.spawn(writer, std::move(spec));
}

} // namespace mcfg
