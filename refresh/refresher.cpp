#include "memcached_cfg/refresh/refresher.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "memcached_cfg/messages/duration.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/messages/log.hpp"

namespace mcfg {

namespace {

/// retry(path, timer_id): the retry timer of a file's failed refresh fired.
using retry_atom = caf::atom_constant<caf::atom("retry")>;
/// recheck(path, timer_id): the wait before a file's next check ended.
using recheck_atom = caf::atom_constant<caf::atom("recheck")>;

using refresher_impl = refresher_actor::extend<
  caf::reacts_to<retry_atom, std::string, uint64_t>,
  caf::reacts_to<recheck_atom, std::string, uint64_t>>;

using clock_time = caf::actor_clock::time_point;

/// Where a file's consumer check stands for the version it is about.
enum class verify_phase { none, verifying, confirmed, unverifiable, failed };

const char* to_string(verify_phase x) {
  switch (x) {
    case verify_phase::none:
      return "none";
    case verify_phase::verifying:
      return "verifying";
    case verify_phase::confirmed:
      return "confirmed";
    case verify_phase::unverifiable:
      return "unverifiable";
    case verify_phase::failed:
      return "failed";
  }
  return "none";
}

/// A sync waiting for a file's refresh or check, and the version it asked
/// for.
struct held_sync {
  caf::typed_response_promise<file_sync> promise;
  uint64_t version = 0;
};

/// One file's refreshes: at most one runs, at most one more is owed. With a
/// check, also the check of the version refreshed last.
struct file_refresh {
  refresh_runner runner;
  bool checks = false;
  verify_settings verify;
  bool running = false;
  /// A refresh is owed and has not started yet.
  bool queued = false;
  /// The run under way is a check's one re-signal, not a rename's refresh.
  bool resignal_run = false;
  /// Failed runs in a row.
  uint32_t failures = 0;
  std::string last_error;
  uint64_t refreshes = 0;
  /// Armed while a failed refresh waits for its retry.
  std::optional<uint64_t> retry_timer;
  clock_time next_retry;
  /// The version of the last rename heard (0: none since the start).
  uint64_t version = 0;
  /// The version the run under way refreshes.
  uint64_t run_version = 0;
  verify_phase phase = verify_phase::none;
  /// The version the check is, or last was, about. 0 after a start: the
  /// check of the start's refresh covers whatever the file holds, since no
  /// rename was heard since.
  uint64_t verified = 0;
  uint64_t confirmed_version = 0;
  std::string verify_detail;
  /// While a check of `verified` runs: when its first run started.
  std::optional<clock_time> verify_start;
  bool resignalled = false;
  /// Bumped when a check starts or is superseded: an answer or a timer of
  /// an older attempt is dropped (CAF 0.17 cannot cancel a delayed message).
  uint64_t attempt = 0;
  std::optional<uint64_t> verify_timer;
  std::vector<held_sync> held_syncs;

  void answer_held_syncs(const caf::error& err) {
    for (auto& held : held_syncs)
      held.promise.deliver(err);
    held_syncs.clear();
  }

  bool busy() const {
    return running || queued || phase == verify_phase::verifying;
  }
};

struct refresher_state {
  static inline const char* name = "refresher";
  refresher_spec spec;
  std::map<std::string, file_refresh> files;
  uint64_t last_timer_id = 0;

  ~refresher_state() {
    // Stopped, restarted or killed: whoever waits must hear why.
    for (auto& [path, file] : files)
      file.answer_held_syncs(caf::make_error(errc::refresher_stopped, path));
  }
};

using refresher_self = refresher_impl::stateful_pointer<refresher_state>;

void finished(refresher_self self, const std::string& path,
              const std::string& failure);

/// Tells the embedder (refresher_spec::publish) what status says of `path`.
void publish(refresher_self self, const std::string& path);

void start_run(refresher_self self, const std::string& path,
               bool resignal = false) {
  auto& file = self->state.files.at(path);
  file.queued = false;
  file.running = true;
  file.resignal_run = resignal;
  file.run_version = file.version;
  self->request(file.runner, caf::infinite, run_atom::value)
    .then(
      [self, path](std::string& failure) {
        finished(self, path, failure);
        publish(self, path);
      },
      [self, path](caf::error& err) {
        finished(self, path, "refresh runner stopped: " + describe(err));
        publish(self, path);
      });
}

// -- answers to syncs ---------------------------------------------------------

std::string version_text(uint64_t version) {
  return version == 0 ? std::string{"the version it held at start"}
                      : "version " + std::to_string(version);
}

/// The answer to a sync for `version` from the file's settled check. A
/// version beyond the one checked changed nothing in the file: the caller
/// proved the file holds it, and no rename followed the checked one.
caf::expected<file_sync>
settled_answer(file_refresh& file, const std::string& path, uint64_t version) {
  auto checked = file.verified;
  auto answer = [&](sync_basis basis, std::string note) {
    return file_sync{path, basis, version, std::move(note)};
  };
  if (file.confirmed_version != 0 && version <= file.confirmed_version)
    return answer(sync_basis::confirmed, {});
  // Past the version checked: it left the file's bytes alone.
  auto left = checked != 0 && version > checked
                ? "version " + std::to_string(version)
                    + " left the file as version " + std::to_string(checked)
                    + " wrote it"
                : std::string{};
  switch (file.phase) {
    case verify_phase::confirmed:
      if (left.empty()) {
        // The check after a start covered what the file holds: this version.
        file.confirmed_version = std::max(file.confirmed_version, version);
        return answer(sync_basis::confirmed, {});
      }
      return answer(sync_basis::unverifiable,
                    left + "; the consumer was shown to enforce that");
    case verify_phase::unverifiable:
      if (left.empty())
        return answer(sync_basis::unverifiable, file.verify_detail);
      return answer(sync_basis::unverifiable, left + "; " + file.verify_detail);
    default:
      break;
  }
  return caf::make_error(errc::verify_failed, path,
                         std::to_string(checked != 0 ? checked : version),
                         file.verify_detail);
}

void answer_from_check(file_refresh& file, const std::string& path) {
  for (auto& held : file.held_syncs) {
    auto out = settled_answer(file, path, held.version);
    if (out)
      held.promise.deliver(std::move(*out));
    else
      held.promise.deliver(std::move(out.error()));
  }
  file.held_syncs.clear();
}

void answer_applied(file_refresh& file, const std::string& path) {
  for (auto& held : file.held_syncs)
    held.promise.deliver(
      file_sync{path, sync_basis::applied, held.version, {}});
  file.held_syncs.clear();
}

// -- the check ----------------------------------------------------------------

void checked(refresher_self self, const std::string& path, uint64_t attempt,
             check_verdict verdict, std::string detail);

check_verdict to_verdict(uint8_t x) {
  // A number beyond the enum says nothing the refresher can trust.
  if (x > static_cast<uint8_t>(check_verdict::unreachable))
    return check_verdict::unreachable;
  return static_cast<check_verdict>(x);
}

void ask_check(refresher_self self, const std::string& path, bool start) {
  auto& file = self->state.files.at(path);
  auto attempt = file.attempt;
  self->request(file.runner, caf::infinite, verify_atom::value, path, start)
    .then(
      [self, path, attempt](uint8_t verdict, std::string& detail) {
        checked(self, path, attempt, to_verdict(verdict), std::move(detail));
        publish(self, path);
      },
      [self, path, attempt](caf::error& err) {
        checked(self, path, attempt, check_verdict::unreachable,
                "consumer check stopped: " + describe(err));
        publish(self, path);
      });
}

/// A rename (or a start) makes the check of anything older moot.
void supersede(file_refresh& file) {
  file.phase = verify_phase::verifying;
  ++file.attempt;
  file.verify_timer.reset();
  file.verify_start.reset();
  file.verify_detail.clear();
  file.resignalled = false;
}

void begin_check(refresher_self self, const std::string& path,
                 uint64_t version) {
  auto& file = self->state.files.at(path);
  supersede(file);
  file.verified = version;
  file.verify_start = self->clock().now();
  ask_check(self, path, true);
}

void settle(file_refresh& file, const std::string& path, verify_phase phase) {
  file.phase = phase;
  file.verify_start.reset();
  file.verify_timer.reset();
  answer_from_check(file, path);
}

void gave_up(refresher_self self, const std::string& path, uint64_t attempt,
             const std::string& diagnosis) {
  auto& file = self->state.files.at(path);
  if (attempt != file.attempt)
    return; // a newer rename came during the diagnosis
  if (!diagnosis.empty())
    file.verify_detail += "; " + diagnosis;
  // The detail names users, never a password (consumer_check.hpp).
  log::warning("refresher", path + ": " + version_text(file.verified)
                              + " not confirmed after "
                              + format_duration(file.verify.timeout) + ": "
                              + file.verify_detail);
  settle(file, path, verify_phase::failed);
}

void give_up(refresher_self self, const std::string& path) {
  auto& file = self->state.files.at(path);
  auto attempt = file.attempt;
  self->request(file.runner, caf::infinite, diagnose_atom::value, path)
    .then(
      [self, path, attempt](std::string& diagnosis) {
        gave_up(self, path, attempt, diagnosis);
        publish(self, path);
      },
      [self, path, attempt](caf::error& err) {
        gave_up(self, path, attempt, "cannot diagnose: " + describe(err));
        publish(self, path);
      });
}

/// The check did not agree (yet): give up, re-signal once, or wait for the
/// next run.
void keep_checking(refresher_self self, const std::string& path) {
  auto& st = self->state;
  auto& file = st.files.at(path);
  auto elapsed = self->clock().now() - *file.verify_start;
  if (elapsed >= file.verify.timeout) {
    give_up(self, path);
  } else if (elapsed >= file.verify.resignal_after && !file.resignalled) {
    // The consumer may have missed the refresh: send it once more.
    log::info("refresher", path + ": " + version_text(file.verified)
                             + " not enforced after "
                             + format_duration(file.verify.resignal_after)
                             + "; refreshing once more");
    file.resignalled = true;
    start_run(self, path, true);
  } else {
    auto id = ++st.last_timer_id;
    file.verify_timer = id;
    self->delayed_send(self, file.verify.interval, recheck_atom::value, path,
                       id);
  }
}

void checked(refresher_self self, const std::string& path, uint64_t attempt,
             check_verdict verdict, std::string detail) {
  auto& file = self->state.files.at(path);
  if (attempt != file.attempt)
    return; // about a version a newer rename superseded
  file.verify_detail = std::move(detail);
  switch (verdict) {
    case check_verdict::confirmed:
      file.confirmed_version = std::max(file.confirmed_version, file.verified);
      settle(file, path, verify_phase::confirmed);
      return;
    case check_verdict::unverifiable:
      // The same bytes renamed again (a reload, a writer's restart): a
      // version already shown to be enforced stays confirmed.
      settle(file, path,
             file.verified != 0 && file.verified <= file.confirmed_version
               ? verify_phase::confirmed
               : verify_phase::unverifiable);
      return;
    default:
      keep_checking(self, path);
  }
}

// -- refreshes ----------------------------------------------------------------

void succeeded(refresher_self self, const std::string& path, bool resignal) {
  auto& file = self->state.files.at(path);
  if (file.failures > 0)
    log::info("refresher", "refreshed " + path + " after "
                             + std::to_string(file.failures)
                             + " failed attempts");
  ++file.refreshes;
  file.failures = 0;
  file.last_error.clear();
  if (file.queued)
    start_run(self, path); // a rename came during this run
  else if (!file.checks)
    answer_applied(file, path);
  else if (resignal)
    ask_check(self, path, false); // the same probes, after the re-signal
  else
    begin_check(self, path, file.run_version);
}

void finished(refresher_self self, const std::string& path,
              const std::string& failure) {
  auto& st = self->state;
  auto& file = st.files.at(path);
  file.running = false;
  auto resignal = std::exchange(file.resignal_run, false);
  if (failure.empty()) {
    succeeded(self, path, resignal);
    return;
  }
  ++file.failures;
  auto wait = refresh_backoff(st.spec, file.failures);
  if (file.failures == 1 || failure != file.last_error)
    log::warning("refresher", "refresh of " + path + " failed: " + failure
                                + "; retrying with backoff from "
                                + format_duration(wait));
  file.last_error = failure;
  // The refresh is still owed; a request meanwhile waits for the retry. A
  // check waits too: it starts afresh once a run goes through.
  file.queued = true;
  if (file.checks) {
    ++file.attempt;
    file.verify_start.reset();
  }
  file.answer_held_syncs(caf::make_error(errc::refresh_failed, path, failure));
  auto id = ++st.last_timer_id;
  file.retry_timer = id;
  file.next_retry = self->clock().now() + wait;
  self->delayed_send(self, wait, retry_atom::value, path, id);
}

void on_refresh(refresher_self self, const std::string& path,
                uint64_t version) {
  auto i = self->state.files.find(path);
  if (i == self->state.files.end())
    return; // no refresh action: the consumer reads the file itself
  auto& file = i->second;
  file.version = version;
  file.queued = true;
  if (file.checks)
    supersede(file); // the newer version is checked after its refresh
  // While one runs, this request is its one follow-up; while a failed one
  // waits, its retry serves this request too.
  if (!file.running && !file.retry_timer)
    start_run(self, path);
}

caf::result<file_sync> on_sync(refresher_self self, const std::string& path,
                               uint64_t version) {
  auto i = self->state.files.find(path);
  if (i == self->state.files.end())
    return file_sync{path, sync_basis::applied, version, {}};
  auto& file = i->second;
  // A failed refresh waiting for its retry: try it now, and answer with how
  // that went rather than wait out the backoff.
  if (file.retry_timer) {
    file.retry_timer.reset();
    start_run(self, path);
  }
  if (!file.checks && !file.running && !file.queued)
    return file_sync{path, sync_basis::applied, version, {}};
  // Shown already, whatever newer version is being checked now.
  if (file.checks && file.confirmed_version != 0
      && version <= file.confirmed_version)
    return file_sync{path, sync_basis::confirmed, version, {}};
  if (file.checks && !file.busy()) {
    if (file.phase != verify_phase::none) {
      auto out = settled_answer(file, path, version);
      if (out)
        return std::move(*out);
      return std::move(out.error());
    }
    // Nothing refreshed since the start: check what the file holds.
    begin_check(self, path, 0);
  }
  auto promise = self->make_response_promise<file_sync>();
  file.held_syncs.push_back(held_sync{promise, version});
  return promise;
}

refresh_status make_status(refresher_self self, const std::string& path,
                           const file_refresh& file) {
  auto now = self->clock().now();
  refresh_status out;
  out.path = path;
  out.pending = file.queued || file.running;
  out.running = file.running;
  out.failures = file.failures;
  out.last_error = file.last_error;
  out.refreshes = file.refreshes;
  if (file.retry_timer)
    out.next_retry_in = file.next_retry - now;
  out.version = file.version;
  out.verifies = file.checks;
  out.confirmed_version = file.confirmed_version;
  out.verify_state = to_string(file.phase);
  out.verify_detail = file.verify_detail;
  if (file.phase == verify_phase::verifying && file.verify_start)
    out.verifying_for = now - *file.verify_start;
  return out;
}

void publish(refresher_self self, const std::string& path) {
  auto& st = self->state;
  if (!st.spec.publish)
    return;
  auto i = st.files.find(path);
  if (i != st.files.end())
    st.spec.publish(make_status(self, path, i->second), self->clock().now());
}

refresher_impl::behavior_type refresher(refresher_self self,
                                        refresher_spec spec) {
  auto& st = self->state;
  st.spec = std::move(spec);
  for (auto& [path, job] : st.spec.jobs) {
    auto runner = st.spec.spawn_runner
                    ? st.spec.spawn_runner(self->system(), path, job)
                    : spawn_refresh_runner(self->system(), job, true);
    self->link_to(runner);
    auto& file = st.files[path];
    file.runner = std::move(runner);
    file.checks = job.check != nullptr;
    file.verify = job.verify;
  }
  // With versions unknown after a restart, the check after this refresh
  // covers whatever the file holds (file_refresh::verified 0).
  if (st.spec.refresh_on_start)
    for (auto& [path, file] : st.files) {
      if (file.checks)
        supersede(file);
      start_run(self, path);
    }
  for (auto& [path, file] : st.files)
    publish(self, path);
  // Every handler (and reply) that may change a file's status publishes it.
  return {
    [=](refresh_atom, const std::string& path, uint64_t version) {
      on_refresh(self, path, version);
      publish(self, path);
    },
    [=](retry_atom, const std::string& path, uint64_t id) {
      auto& file = self->state.files.at(path);
      if (file.retry_timer != id)
        return;
      file.retry_timer.reset();
      start_run(self, path);
      publish(self, path);
    },
    [=](recheck_atom, const std::string& path, uint64_t id) {
      auto& file = self->state.files.at(path);
      if (file.verify_timer != id)
        return; // the check it was armed for was superseded or settled
      file.verify_timer.reset();
      ask_check(self, path, false);
      publish(self, path);
    },
    [=](sync_atom, const std::string& path, uint64_t version) {
      auto out = on_sync(self, path, version);
      publish(self, path);
      return out;
    },
    [=](status_atom) {
      std::vector<refresh_status> out;
      for (auto& [path, file] : self->state.files)
        out.push_back(make_status(self, path, file));
      return out;
    },
  };
}

} // namespace

caf::timespan refresh_backoff(const refresher_spec& spec, uint32_t failures) {
  auto wait = spec.backoff_min;
  for (uint32_t i = 1; i < failures && wait < spec.backoff_max; ++i)
    wait *= 2;
  return std::min(wait, spec.backoff_max);
}

refresh_runner spawn_refresh_runner(caf::actor_system& sys, refresh_job job,
                                    bool detached) {
  auto behavior = [job = std::move(job)]() -> refresh_runner::behavior_type {
    return {
      [job](run_atom) {
        auto done = job.action();
        return done ? std::string{} : done.error().message;
      },
      [job](verify_atom, const std::string& path, bool start) {
        if (!job.check)
          return caf::make_result(
            static_cast<uint8_t>(check_verdict::unreachable),
            std::string{"no consumer check for "} + path);
        auto out = start ? job.check->start(path) : job.check->again();
        return caf::make_result(static_cast<uint8_t>(out.verdict),
                                std::move(out.detail));
      },
      [job](diagnose_atom, const std::string& path) {
        return job.check ? job.check->diagnose(path) : std::string{};
      },
    };
  };
  if (detached)
    return sys.spawn<caf::detached>(behavior);
  return sys.spawn(behavior);
}

refresher_actor spawn_refresher(caf::actor_system& sys, refresher_spec spec) {
  return sys.spawn(refresher, std::move(spec));
}

} // namespace mcfg
