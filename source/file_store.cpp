#include "memcached_cfg/source/file_store.hpp"

#include <optional>
#include <variant>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "memcached_cfg/messages/duration.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/messages/log.hpp"
#include "memcached_cfg/source/file_watcher.hpp"

namespace mcfg {

source_load_result parse_and_validate(const std::string& bytes,
                                      const std::string& path,
                                      const source_validator& validate) {
  return check_source(parse_source(bytes, path), validate);
}

source_load_result load_and_validate(const std::string& path,
                                     const source_validator& validate) {
  auto bytes = read_source_bytes(path);
  if (auto err = std::get_if<located_error>(&bytes)) {
    source_load_result result;
    result.errors.push_back(std::move(*err));
    return result;
  }
  return parse_and_validate(std::get<std::string>(bytes), path, validate);
}

namespace {

/// poll: look at the source file again (self-sent, polling only).
using poll_atom = caf::atom_constant<caf::atom("poll")>;
/// settle(timer_id): the source may have settled; look at it (self-sent).
using settle_atom = caf::atom_constant<caf::atom("settle")>;

using file_store_impl = file_store_watched_actor::extend<
  caf::reacts_to<settle_atom, uint64_t>, caf::reacts_to<poll_atom>>;

using clock_time = caf::actor_clock::time_point;

using source_read = std::variant<std::string, located_error>;

struct store_state {
  static inline const char* name = "file_store";
  file_store_spec spec;
  std::string log_name;
  source_status status;
  /// The bytes parsed last (published or refused), to skip unchanged files;
  /// none after a failed read.
  std::optional<std::string> last_bytes;
  /// Stopped and joined when the state goes, with the actor.
  std::unique_ptr<file_watcher> watcher;
  /// The watcher's event count as of the last file_event handled.
  uint64_t events_seen = 0;
  /// The one live settle timer (a stale one that still fires is dropped).
  std::optional<uint64_t> settle_timer;
  uint64_t last_timer_id = 0;
  clock_time armed_for;
  /// When the source counts as settled, unless another event comes first.
  clock_time settle_due;
  /// Polling: changed bytes seen once, to be confirmed by the next poll.
  std::optional<std::string> poll_candidate;
};

using store_self = file_store_impl::stateful_pointer<store_state>;

std::optional<std::string> refuse(store_self self, std::string text) {
  auto& st = self->state;
  if (text != st.status.last_error) {
    ++st.status.refused_edits;
    log::error(st.log_name,
               "edit refused, keeping the last good state: " + text);
  }
  st.status.last_error = text;
  return text;
}

/// Publishes what a read of the source gave, when it is new and valid.
/// Returns the refusal, if the source is refused.
std::optional<std::string> consider(store_self self, source_read read) {
  auto& st = self->state;
  if (auto err = std::get_if<located_error>(&read)) {
    st.last_bytes.reset();
    return refuse(self, err->to_string());
  }
  auto& bytes = std::get<std::string>(read);
  if (bytes == st.last_bytes) {
    if (st.status.last_error.empty())
      return std::nullopt;
    return st.status.last_error;
  }
  st.last_bytes = bytes;
  // Exactly the bytes compared are parsed: no second read.
  auto result = parse_and_validate(bytes, st.spec.source_path,
                                   st.spec.validate);
  if (!result.ok())
    return refuse(self, to_string(result.errors));
  st.status.last_error.clear();
  auto update = st.spec.truth->publish(std::move(result.value->values));
  st.status.version = update.version;
  if (!update.changes.empty())
    log::info(st.log_name,
              "source changed: " + std::to_string(update.changes.size())
                + " keys, now version " + std::to_string(update.version));
  return std::nullopt;
}

std::optional<std::string> look(store_self self) {
  return consider(self, read_source_bytes(self->state.spec.source_path));
}

void arm_settle(store_self self, caf::timespan after) {
  auto& st = self->state;
  st.settle_timer = ++st.last_timer_id;
  st.armed_for = self->clock().now() + after;
  self->delayed_send(self, after, settle_atom::value, *st.settle_timer);
}

/// The source has settled: read it, and take what was read unless something
/// happened meanwhile.
void settle(store_self self) {
  auto& st = self->state;
  auto read = read_source_bytes(st.spec.source_path);
  // Something happened since the last report, before or while the file was
  // read: a report about the source starts the wait again; events about
  // other files only delay the next look.
  if (st.watcher && !st.watcher->quiet_since(st.events_seen)) {
    arm_settle(self, st.spec.recheck);
    return;
  }
  consider(self, std::move(read));
}

void on_settle(store_self self, uint64_t id) {
  auto& st = self->state;
  if (st.settle_timer != id)
    return;
  st.settle_timer.reset();
  auto now = self->clock().now();
  if (now < st.settle_due)
    arm_settle(self, st.settle_due - now);
  else
    settle(self);
}

/// Every event restarts the wait: the source is read only once nothing has
/// been reported about it for the wait its latest event calls for.
void on_file_event(store_self self, file_event_kind kind, uint64_t seen) {
  auto& st = self->state;
  st.events_seen = std::max(st.events_seen, seen);
  auto wait = kind == file_event_kind::complete ? st.spec.settle_complete
                                                : st.spec.quiet_period;
  st.settle_due = self->clock().now() + wait;
  if (wait == caf::timespan{0}) {
    st.settle_timer.reset(); // an armed one is now stale
    settle(self);
    return;
  }
  // The armed timer re-arms for a later due time; an earlier one needs a
  // timer of its own.
  if (!st.settle_timer || st.armed_for > st.settle_due)
    arm_settle(self, wait);
}

void on_poll(store_self self) {
  auto& st = self->state;
  auto read = read_source_bytes(st.spec.source_path);
  auto bytes = std::get_if<std::string>(&read);
  if (bytes && *bytes != st.last_bytes && *bytes != st.poll_candidate) {
    st.poll_candidate = *bytes;
  } else {
    st.poll_candidate.reset();
    consider(self, std::move(read));
  }
  self->delayed_send(self, st.spec.poll_interval, poll_atom::value);
}

/// Starts the watcher the spec asks for; says how edits are noticed.
std::string start_watching(store_self self) {
  auto& st = self->state;
  auto polling = [&] {
    self->delayed_send(self, st.spec.poll_interval, poll_atom::value);
    return "polling every " + format_duration(st.spec.poll_interval);
  };
  switch (st.spec.watch) {
    case watch_mode::events:
      return "events";
    case watch_mode::polling:
      return polling();
    case watch_mode::automatic:
      break;
  }
  // Weak: the watcher, owned by the state, must not keep the actor alive.
  auto addr = self->address();
  std::string why_not;
  st.watcher = file_watcher::start(
    st.spec.source_path,
    [addr](file_event_kind kind, uint64_t seen) {
      if (auto me = caf::actor_cast<file_store_watched_actor>(addr))
        caf::anon_send(me, file_event_atom::value, static_cast<uint8_t>(kind),
                       seen);
    },
    why_not);
  if (st.watcher)
    return "inotify";
  auto how = polling();
  log::warning(st.log_name, why_not + "; " + how);
  return how;
}

file_store_impl::behavior_type file_store(store_self self,
                                          file_store_spec spec) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.log_name = "file_store " + st.spec.source_path;
  st.status.path = st.spec.source_path;
  st.status.version = st.spec.truth->version();
  // Watch first, then read: an edit in between is reported, not lost.
  st.status.watching = start_watching(self);
  look(self);
  return {
    [=](file_event_atom, uint8_t kind, uint64_t seen) {
      on_file_event(self, static_cast<file_event_kind>(kind), seen);
    },
    [=](settle_atom, uint64_t id) { on_settle(self, id); },
    [=](poll_atom) { on_poll(self); },
    [=](reload_atom) -> caf::result<caf::ok_atom> {
      if (auto refusal = look(self))
        return caf::make_error(errc::invalid_source, *refusal);
      return caf::ok_atom::value;
    },
    [=](sync_atom) -> caf::result<uint64_t> {
      if (auto refusal = look(self))
        return caf::make_error(errc::invalid_source, *refusal);
      return self->state.status.version;
    },
    [=](status_atom) { return self->state.status; },
  };
}

} // namespace

store_actor spawn_file_store(caf::actor_system& sys, file_store_spec spec) {
  return sys.spawn(file_store, std::move(spec));
}

} // namespace mcfg
