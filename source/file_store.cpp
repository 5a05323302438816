#include "memcached_cfg/source/file_store.hpp"

#include <optional>
#include <variant>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <sys/stat.h>

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
  /// Whether edits are noticed by polling (asked for, no inotify, or the
  /// watch stopped).
  bool polling = false;
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
  /// Reloads and syncs that came while a change was unsettled: answered by
  /// the next read that counts.
  std::vector<caf::typed_response_promise<caf::ok_atom>> held_reloads;
  std::vector<caf::typed_response_promise<uint64_t>> held_syncs;

  /// A request still held when the store stops (a restart, the node's
  /// shutdown) is answered as one the store never took, not left hanging.
  ~store_state() {
    auto down = [] { return caf::make_error(caf::sec::request_receiver_down); };
    for (auto& p : held_reloads)
      p.deliver(down());
    for (auto& p : held_syncs)
      p.deliver(down());
  }
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

/// Takes a read that counts, and answers the requests held for one with
/// what it gave: the refusal, or ok and the version then held.
void take(store_self self, source_read read) {
  auto& st = self->state;
  auto refusal = consider(self, std::move(read));
  auto reloads = std::move(st.held_reloads);
  auto syncs = std::move(st.held_syncs);
  st.held_reloads.clear();
  st.held_syncs.clear();
  auto refused = [&] {
    return caf::make_error(errc::invalid_source, *refusal);
  };
  for (auto& p : reloads)
    refusal ? p.deliver(refused()) : p.deliver(caf::ok_atom::value);
  for (auto& p : syncs)
    refusal ? p.deliver(refused()) : p.deliver(st.status.version);
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
  take(self, std::move(read));
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

/// Polling: a change counts once a second read confirms it; what is
/// unchanged, or unreadable, counts at once.
void poll_read(store_self self) {
  auto& st = self->state;
  auto read = read_source_bytes(st.spec.source_path);
  auto bytes = std::get_if<std::string>(&read);
  if (bytes && *bytes != st.last_bytes && *bytes != st.poll_candidate) {
    st.poll_candidate = *bytes;
  } else {
    st.poll_candidate.reset();
    take(self, std::move(read));
  }
}

void on_poll(store_self self) {
  poll_read(self);
  self->delayed_send(self, self->state.spec.poll_interval, poll_atom::value);
}

/// A reload or sync came: it is held (by the caller) until a read counts.
/// On a quiet source that read is made now; while a change is unsettled,
/// the settle or poll under way makes it.
void look_for_request(store_self self) {
  auto& st = self->state;
  if (st.settle_timer)
    return; // a settle is due: it answers
  if (st.polling) {
    // A candidate waits for the next poll to confirm it; a first sight of
    // a change becomes one.
    if (!st.poll_candidate)
      poll_read(self);
    return;
  }
  settle(self);
}

std::string start_polling(store_self self) {
  auto& st = self->state;
  st.polling = true;
  self->delayed_send(self, st.spec.poll_interval, poll_atom::value);
  return "polling every " + format_duration(st.spec.poll_interval);
}

/// The watcher's thread ended: say so where health looks, and poll so that
/// edits are still taken.
void on_watch_stopped(store_self self, const std::string& why) {
  auto& st = self->state;
  if (st.polling)
    return;
  st.watcher.reset(); // its thread has ended: joined at once
  st.poll_candidate.reset();
  st.status.watching = start_polling(self);
  st.status.unreachable = "source watch stopped: " + why + "; "
                          + st.status.watching + " instead";
  log::error(st.log_name, st.status.unreachable);
  // A settle under way relied on the watcher: the polls decide from now on
  // (its timer, when it fires, is stale and dropped).
  st.settle_timer.reset();
}

/// Starts the watcher the spec asks for; says how edits are noticed.
std::string start_watching(store_self self) {
  auto& st = self->state;
  switch (st.spec.watch) {
    case watch_mode::events:
      return "events";
    case watch_mode::polling:
      return start_polling(self);
    case watch_mode::automatic:
      break;
  }
  // Weak: the watcher, owned by the state, must not keep the actor alive.
  auto addr = self->address();
  file_watcher::options opts;
  opts.on_stop = [addr](const std::string& why) {
    if (auto me = caf::actor_cast<file_store_watched_actor>(addr))
      caf::anon_send(me, watch_stopped_atom::value, why);
  };
  std::string why_not;
  st.watcher = file_watcher::start(
    st.spec.source_path,
    [addr](file_event_kind kind, uint64_t seen) {
      if (auto me = caf::actor_cast<file_store_watched_actor>(addr))
        caf::anon_send(me, file_event_atom::value, static_cast<uint8_t>(kind),
                       seen);
    },
    why_not, std::move(opts));
  if (st.watcher)
    return "inotify";
  auto how = start_polling(self);
  log::warning(st.log_name, why_not + "; " + how);
  return how;
}

/// How long ago the file at `path` was last modified (never negative);
/// none when it cannot be looked at.
std::optional<caf::timespan> modified_ago(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return std::nullopt;
  auto mtime = std::chrono::system_clock::time_point{
    std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::seconds{st.st_mtim.tv_sec}
      + std::chrono::nanoseconds{st.st_mtim.tv_nsec})};
  auto ago = std::chrono::system_clock::now() - mtime;
  return std::max(caf::timespan{0},
                  std::chrono::duration_cast<caf::timespan>(ago));
}

/// The first read, at start or restart: the events before it are unknown,
/// but a file modified within the quiet period may be a save under way.
void first_look(store_self self) {
  auto& st = self->state;
  auto ago = modified_ago(st.spec.source_path);
  if (ago && *ago < st.spec.quiet_period) {
    auto wait = st.spec.quiet_period - *ago;
    st.settle_due = self->clock().now() + wait;
    arm_settle(self, wait);
    return;
  }
  settle(self);
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
  first_look(self);
  return {
    [=](file_event_atom, uint8_t kind, uint64_t seen) {
      on_file_event(self, static_cast<file_event_kind>(kind), seen);
    },
    [=](watch_stopped_atom, const std::string& why) {
      on_watch_stopped(self, why);
    },
    [=](settle_atom, uint64_t id) { on_settle(self, id); },
    [=](poll_atom) { on_poll(self); },
    [=](reload_atom) -> caf::result<caf::ok_atom> {
      auto p = self->make_response_promise<caf::ok_atom>();
      self->state.held_reloads.push_back(p);
      look_for_request(self);
      return p;
    },
    [=](sync_atom) -> caf::result<uint64_t> {
      auto p = self->make_response_promise<uint64_t>();
      self->state.held_syncs.push_back(p);
      look_for_request(self);
      return p;
    },
    [=](status_atom) { return self->state.status; },
  };
}

} // namespace

store_actor spawn_file_store(caf::actor_system& sys, file_store_spec spec) {
  return sys.spawn(file_store, std::move(spec));
}

} // namespace mcfg
