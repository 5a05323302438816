#include "memcached_cfg/refresh/refresher.hpp"

#include <optional>

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

using refresher_impl
  = refresher_actor::extend<caf::reacts_to<retry_atom, std::string, uint64_t>>;

using clock_time = caf::actor_clock::time_point;

/// One file's refreshes: at most one runs, at most one more is owed.
struct file_refresh {
  refresh_runner runner;
  bool running = false;
  /// A refresh is owed and has not started yet.
  bool queued = false;
  /// Failed runs in a row.
  uint32_t failures = 0;
  std::string last_error;
  uint64_t refreshes = 0;
  /// Armed while a failed refresh waits for its retry.
  std::optional<uint64_t> retry_timer;
  clock_time next_retry;
  std::vector<caf::typed_response_promise<file_sync>> held_syncs;

  void answer_held_syncs(const caf::error& err) {
    for (auto& promise : held_syncs)
      if (err)
        promise.deliver(err);
      else
        promise.deliver(file_sync{});
    held_syncs.clear();
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

void start_run(refresher_self self, const std::string& path) {
  auto& file = self->state.files.at(path);
  file.queued = false;
  file.running = true;
  self->request(file.runner, caf::infinite, run_atom::value)
    .then([self, path](std::string& failure) { finished(self, path, failure); },
          [self, path](caf::error& err) {
            finished(self, path, "refresh runner stopped: " + describe(err));
          });
}

void finished(refresher_self self, const std::string& path,
              const std::string& failure) {
  auto& st = self->state;
  auto& file = st.files.at(path);
  file.running = false;
  if (failure.empty()) {
    if (file.failures > 0)
      log::info("refresher", "refreshed " + path + " after "
                               + std::to_string(file.failures)
                               + " failed attempts");
    ++file.refreshes;
    file.failures = 0;
    file.last_error.clear();
    if (file.queued)
      start_run(self, path); // a rename came during this run
    else
      file.answer_held_syncs(caf::error{});
    return;
  }
  ++file.failures;
  auto wait = refresh_backoff(st.spec, file.failures);
  if (file.failures == 1 || failure != file.last_error)
    log::warning("refresher", "refresh of " + path + " failed: " + failure
                                + "; retrying with backoff from "
                                + format_duration(wait));
  file.last_error = failure;
  // The refresh is still owed; a request meanwhile waits for the retry.
  file.queued = true;
  file.answer_held_syncs(caf::make_error(errc::refresh_failed, path, failure));
  auto id = ++st.last_timer_id;
  file.retry_timer = id;
  file.next_retry = self->clock().now() + wait;
  self->delayed_send(self, wait, retry_atom::value, path, id);
}

refresh_status make_status(refresher_self self, const std::string& path,
                           const file_refresh& file) {
  refresh_status out;
  out.path = path;
  out.pending = file.queued || file.running;
  out.running = file.running;
  out.failures = file.failures;
  out.last_error = file.last_error;
  out.refreshes = file.refreshes;
  if (file.retry_timer)
    out.next_retry_in = file.next_retry - self->clock().now();
  return out;
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
    st.files[path].runner = std::move(runner);
  }
  if (st.spec.refresh_on_start)
    for (auto& [path, file] : st.files)
      start_run(self, path);
  return {
    [=](refresh_atom, const std::string& path, uint64_t) {
      auto i = self->state.files.find(path);
      if (i == self->state.files.end())
        return; // no refresh action: the consumer reads the file itself
      auto& file = i->second;
      file.queued = true;
      // While one runs, this request is its one follow-up; while a failed
      // one waits, its retry serves this request too.
      if (!file.running && !file.retry_timer)
        start_run(self, path);
    },
    [=](retry_atom, const std::string& path, uint64_t id) {
      auto& file = self->state.files.at(path);
      if (file.retry_timer != id)
        return;
      file.retry_timer.reset();
      start_run(self, path);
    },
    [=](sync_atom, const std::string& path,
        uint64_t version) -> caf::result<file_sync> {
      auto applied = file_sync{path, sync_basis::applied, version, {}};
      auto i = self->state.files.find(path);
      if (i == self->state.files.end())
        return applied;
      auto& file = i->second;
      // A failed refresh waiting for its retry: try it now, and answer with
      // how that went rather than wait out the backoff.
      if (file.retry_timer) {
        file.retry_timer.reset();
        start_run(self, path);
      }
      if (!file.running && !file.queued)
        return applied;
      auto promise = self->make_response_promise<file_sync>();
      file.held_syncs.push_back(promise);
      return promise;
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
        auto out = start ? job.check->start(path) : job.check->again();
        return caf::make_result(static_cast<uint8_t>(out.verdict),
                                std::move(out.detail));
      },
      [job](diagnose_atom, const std::string& path) {
        return job.check->diagnose(path);
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
