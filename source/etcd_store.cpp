#include "memcached_cfg/source/etcd_store.hpp"

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/messages/log.hpp"

namespace mcfg {

source_load_result validate_users(const etcd::users_version& v,
                                  const source_validator& validate) {
  return check_source(
    parse_source_users(v.users, "etcd revision " + std::to_string(v.revision)),
    validate);
}

std::string describe_etcd_source(const etcd::client_options& opts,
                                 const std::string& prefix) {
  std::string out = "etcd ";
  for (size_t i = 0; i < opts.endpoints.size(); ++i)
    out += (i == 0 ? "" : ",") + opts.endpoints[i];
  return out + " " + prefix;
}

namespace {

/// What the follower's thread, the actor and its sync probes share.
struct shared_state {
  std::mutex mtx;
  /// Notified after each version handed over, and when the store stops.
  std::condition_variable handed_over;
  source_status status;
  /// The revision of the last revision handed over, accepted or not, and
  /// the digest of its users; revision 0 before the first.
  int64_t last_revision = 0;
  std::string last_digest;
  /// Set when the store stops: probes waiting give up.
  bool stopping = false;
  /// The clients of the sync probes reading now, cancelled when the store
  /// stops so that no probe holds up the node's shutdown.
  std::set<etcd::client*> probes;
};

/// Runs on the follower's thread: validate the revision whole, publish it
/// or refuse it.
void consider(const etcd_store_spec& spec, shared_state& shared,
              const std::string& log_name, etcd::users_version v) {
  auto result = validate_users(v, spec.validate);
  std::lock_guard<std::mutex> guard{shared.mtx};
  // Under the lock, so a probe that checks and then waits misses nothing.
  shared.handed_over.notify_all();
  auto& st = shared.status;
  shared.last_revision = v.revision;
  shared.last_digest = v.digest;
  if (!result.ok()) {
    auto text = to_string(result.errors);
    if (text != st.last_error) {
      ++st.refused_edits;
      log::error(log_name,
                 "revision " + std::to_string(v.revision)
                   + " refused, keeping the last good version: " + text);
    }
    st.last_error = std::move(text);
    return;
  }
  st.last_error.clear();
  auto update = spec.truth->publish(std::move(result.value->values));
  st.version = update.version;
  spec.versions->record(st.version, {v.revision, v.digest});
  if (!update.changes.empty())
    log::info(log_name, "revision " + std::to_string(v.revision) + ": "
                          + std::to_string(update.changes.size())
                          + " keys changed, now version "
                          + std::to_string(st.version));
}

/// Whether the versions handed over have caught up with `now`, the users
/// etcd held when a sync arrived: the follower handed over that revision or
/// a later one, or one whose users are those of `now` (same keys at the
/// same mod_revisions: nothing under users/ changed since). The second
/// covers a newest revision that touched other keys only, which the
/// follower's watch of users/ never delivers. Called under `shared.mtx`.
bool caught_up(const shared_state& shared, const etcd::users_version& now) {
  return shared.last_revision > 0
         && (shared.last_revision >= now.revision
             || shared.last_digest == now.digest);
}

/// How long a sync may take from its arrival, the read of etcd and the
/// follower's handing over together: the client's bound on one request
/// over every endpoint (retry_for, plus the attempt under way when it runs
/// out). Below the control API's request timeout with the defaults.
std::chrono::milliseconds sync_bound(const etcd::client_options& o) {
  return o.retry_for + o.request_timeout;
}

/// Reads etcd's current users linearizably (so every write acknowledged
/// before the sync arrived is in), on a client of its own that the store
/// can cancel.
etcd::users_version read_now(const etcd::client_options& opts,
                             const std::string& prefix, shared_state& shared) {
  etcd::client c{opts};
  {
    std::lock_guard<std::mutex> guard{shared.mtx};
    if (shared.stopping)
      throw etcd::etcd_error(etcd::etcd_errc::cancelled, "the store stopped");
    shared.probes.insert(&c);
  }
  auto forget = [&] {
    std::lock_guard<std::mutex> guard{shared.mtx};
    shared.probes.erase(&c);
  };
  try {
    auto now = etcd::read_users(c, prefix);
    forget();
    return now;
  } catch (...) {
    forget();
    throw;
  }
}

/// What a sync waits for, blocking (on a probe's own thread): etcd's
/// current revision, then the follower handing it over. An error saying
/// which did not happen within sync_bound.
caf::error await_current(const etcd::client_options& opts,
                         const std::string& prefix, shared_state& shared) {
  auto bound = sync_bound(opts);
  auto deadline = std::chrono::steady_clock::now() + bound;
  etcd::users_version now;
  try {
    now = read_now(opts, prefix, shared);
  } catch (const std::exception& e) {
    return caf::make_error(errc::invalid_source,
                           std::string{"sync could not read etcd's current "
                                       "revision, the files keep the last "
                                       "good version: "}
                             + e.what());
  }
  std::unique_lock<std::mutex> guard{shared.mtx};
  bool done = shared.handed_over.wait_until(guard, deadline, [&] {
    return shared.stopping || caught_up(shared, now);
  });
  if (shared.stopping)
    return caf::make_error(errc::invalid_source,
                           "the etcd store stopped before the sync was done");
  if (!done)
    return caf::make_error(errc::invalid_source,
                           "the watch did not reach etcd revision "
                             + std::to_string(now.revision) + " within "
                             + std::to_string(bound.count()) + "ms (it is at "
                             + std::to_string(shared.last_revision) + ")");
  return {};
}

/// One sync's helper: a detached actor (the wait blocks; the store must
/// stay free to answer status) that answers one sync_atom and quits.
caf::behavior sync_probe(caf::event_based_actor* self,
                         etcd::client_options opts, std::string prefix,
                         std::shared_ptr<shared_state> shared) {
  return {
    [=](sync_atom) -> caf::result<caf::ok_atom> {
      self->quit();
      if (auto err = await_current(opts, prefix, *shared))
        return err;
      return caf::ok_atom::value;
    },
  };
}

struct store_state {
  static inline const char* name = "etcd_store";
  std::shared_ptr<shared_state> shared;
  std::shared_ptr<etcd::etcd_reachability> reach;
  /// Stopped and joined with the state, when the actor goes.
  std::unique_ptr<etcd::etcd_follower> follower;

  ~store_state() {
    if (!shared)
      return;
    std::lock_guard<std::mutex> guard{shared->mtx};
    shared->stopping = true;
    for (auto* c : shared->probes)
      c->cancel();
    shared->handed_over.notify_all();
  }
};

using store_self = store_actor::stateful_pointer<store_state>;

source_status status_of(store_self self) {
  auto& st = self->state;
  source_status out;
  {
    std::lock_guard<std::mutex> guard{st.shared->mtx};
    out = st.shared->status;
  }
  // The follower's own doubt first: the registration's client may reach a
  // healthy member while the watch's member is stale, and the reverse.
  std::string text;
  if (auto doubt = st.reach->freshness().doubted())
    text = etcd::describe_unproven(doubt->since, doubt->why);
  if (auto down = st.reach->unreachable())
    text += (text.empty() ? "" : "; ")
            + etcd::describe_unreachable(down->first, down->second);
  out.unreachable = std::move(text);
  return out;
}

store_actor::behavior_type etcd_store(store_self self, etcd_store_spec spec) {
  auto& st = self->state;
  st.shared = std::make_shared<shared_state>();
  st.reach = spec.reach ? spec.reach
                        : std::make_shared<etcd::etcd_reachability>();
  if (!spec.versions)
    spec.versions = std::make_shared<etcd_versions>();
  auto source = describe_etcd_source(spec.client, spec.prefix);
  st.shared->status.backend = "etcd";
  st.shared->status.path = source;
  st.shared->status.version = spec.truth->version();
  st.shared->status.watching = "etcd watch";
  auto log_name = "etcd_store " + spec.prefix;
  st.follower = std::make_unique<etcd::etcd_follower>(
    spec.client, spec.prefix, st.reach,
    [spec, shared = st.shared, log_name](etcd::users_version v) {
      consider(spec, *shared, log_name, std::move(v));
    });
  return {
    [=](reload_atom) -> caf::result<caf::ok_atom> {
      // The watch is live: there is nothing to look at again. A refused
      // revision stays refused until a later one replaces it.
      auto status = status_of(self);
      if (!status.last_error.empty())
        return caf::make_error(errc::invalid_source, status.last_error);
      return caf::ok_atom::value;
    },
    [=](sync_atom) -> caf::result<uint64_t> {
      // The version published once the follower has handed over etcd's
      // revision as of now: a put acknowledged before the sync counts.
      auto rp = self->make_response_promise<uint64_t>();
      auto probe = self->spawn<caf::detached>(sync_probe, spec.client,
                                              spec.prefix, self->state.shared);
      // The probe answers within sync_bound; the margin only guards
      // against a probe that never answers.
      auto margin = sync_bound(spec.client) + std::chrono::seconds(2);
      self->request(probe, margin, sync_atom::value)
        .then(
          [=](caf::ok_atom) mutable {
            auto status = status_of(self);
            if (!status.last_error.empty())
              rp.deliver(
                caf::make_error(errc::invalid_source, status.last_error));
            else
              rp.deliver(status.version);
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](status_atom) { return status_of(self); },
  };
}

} // namespace

store_actor spawn_etcd_store(caf::actor_system& sys, etcd_store_spec spec) {
  // Detached: the follower's thread is its own, but joining it when the
  // store stops must not hold up a scheduler worker.
  return sys.spawn<caf::detached>(etcd_store, std::move(spec));
}

} // namespace mcfg
