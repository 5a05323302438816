#include "node/refresher.hpp"

#include <set>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/log.hpp"

namespace mcfg {

namespace {

/// run: perform the pending refreshes (self-sent, so requests already in the
/// mailbox are coalesced into one run).
using run_atom = caf::atom_constant<caf::atom("run")>;
/// retry(timer_id): the retry timer of a failed refresh fired.
using retry_atom = caf::atom_constant<caf::atom("retry")>;

using refresher_impl = refresher_actor::extend<
  caf::reacts_to<run_atom>, caf::reacts_to<retry_atom, uint64_t>>;

struct refresher_state {
  static inline const char* name = "refresher";
  refresher_spec spec;
  /// Files whose consumer still has to re-read them.
  std::set<std::string> pending;
  bool run_queued = false;
  std::optional<uint64_t> retry_timer;
  uint64_t last_timer_id = 0;
  std::map<std::string, refresh_status> stats;
  std::vector<caf::typed_response_promise<caf::ok_atom>> held_syncs;
};

using refresher_self = refresher_impl::stateful_pointer<refresher_state>;

void run_pending(refresher_self self) {
  auto& st = self->state;
  for (auto i = st.pending.begin(); i != st.pending.end();) {
    auto& stat = st.stats[*i];
    stat.path = *i;
    std::string failure;
    {
      std::lock_guard<std::mutex> guard{*st.spec.file_lock};
      failure = st.spec.actions.at(*i)();
    }
    if (failure.empty()) {
      if (stat.failures > 0)
        log::info("refresher", "refreshed " + *i + " after "
                                 + std::to_string(stat.failures)
                                 + " failed attempts");
      ++stat.refreshes;
      stat.failures = 0;
      stat.last_error.clear();
      stat.pending = false;
      i = st.pending.erase(i);
      continue;
    }
    if (stat.failures == 0 || failure != stat.last_error)
      log::warning("refresher", "refresh of " + *i + " failed: " + failure
                                  + "; retrying every second");
    ++stat.failures;
    stat.last_error = failure;
    ++i;
  }
  if (st.pending.empty()) {
    for (auto& promise : st.held_syncs)
      promise.deliver(caf::ok_atom::value);
    st.held_syncs.clear();
  } else if (!st.retry_timer) {
    st.retry_timer = ++st.last_timer_id;
    self->delayed_send(self, st.spec.retry_interval, retry_atom::value,
                       *st.retry_timer);
  }
}

refresher_impl::behavior_type refresher(refresher_self self,
                                        refresher_spec spec) {
  self->state.spec = std::move(spec);
  if (self->state.spec.refresh_on_start)
    for (auto& [path, action] : self->state.spec.actions)
      self->send(self, refresh_atom::value, path);
  return {
    [=](refresh_atom, const std::string& path) {
      auto& st = self->state;
      if (st.spec.actions.count(path) == 0)
        return;
      st.pending.insert(path);
      st.stats[path].pending = true;
      // Requests that arrive before the run are coalesced into it.
      if (!st.run_queued) {
        st.run_queued = true;
        self->send(self, run_atom::value);
      }
    },
    [=](run_atom) {
      self->state.run_queued = false;
      run_pending(self);
    },
    [=](retry_atom, uint64_t id) {
      auto& st = self->state;
      if (st.retry_timer != id)
        return;
      st.retry_timer.reset();
      run_pending(self);
    },
    [=](sync_atom) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (st.pending.empty() && !st.run_queued)
        return caf::ok_atom::value;
      auto promise = self->make_response_promise<caf::ok_atom>();
      st.held_syncs.push_back(promise);
      return promise;
    },
    [=](status_atom) {
      std::vector<refresh_status> out;
      for (auto& [path, stat] : self->state.stats)
        out.push_back(stat);
      return out;
    },
  };
}

} // namespace

refresher_actor spawn_refresher(caf::actor_system& sys, refresher_spec spec,
                                bool detached) {
  if (detached)
    return sys.spawn<caf::detached>(refresher, std::move(spec));
  return sys.spawn(refresher, std::move(spec));
}

} // namespace mcfg
