#include "memcached_cfg/source/etcd_store.hpp"

#include <mutex>

#include <caf/actor_system.hpp>
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

/// What the follower's thread and the actor share.
struct shared_state {
  std::mutex mtx;
  source_status status;
  /// The revision of the last revision handed over, accepted or not.
  int64_t last_revision = 0;
};

/// Runs on the follower's thread: validate the revision whole, publish it
/// or refuse it.
void consider(const etcd_store_spec& spec, shared_state& shared,
              const std::string& log_name, etcd::users_version v) {
  auto result = validate_users(v, spec.validate);
  std::lock_guard<std::mutex> guard{shared.mtx};
  auto& st = shared.status;
  shared.last_revision = v.revision;
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

struct store_state {
  static inline const char* name = "etcd_store";
  std::shared_ptr<shared_state> shared;
  std::shared_ptr<etcd::etcd_reachability> reach;
  /// Stopped and joined with the state, when the actor goes.
  std::unique_ptr<etcd::etcd_follower> follower;
};

using store_self = store_actor::stateful_pointer<store_state>;

source_status status_of(store_self self) {
  auto& st = self->state;
  source_status out;
  {
    std::lock_guard<std::mutex> guard{st.shared->mtx};
    out = st.shared->status;
  }
  if (auto down = st.reach->unreachable())
    out.unreachable = etcd::describe_unreachable(down->first, down->second);
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
      // The version published last: every revision the watch has seen.
      auto status = status_of(self);
      if (!status.last_error.empty())
        return caf::make_error(errc::invalid_source, status.last_error);
      return status.version;
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
