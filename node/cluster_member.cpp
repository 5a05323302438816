#include "memcached_cfg/node/cluster_member.hpp"

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <nlohmann/json.hpp>

#include "memcached_cfg/refresh/refresher.hpp"

namespace mcfg {

cluster_member::cluster_member(caf::actor_system& sys, const node_config& cfg,
                               const node_source& src,
                               std::shared_ptr<source_of_truth> truth)
  : sys_(sys), cfg_(cfg), etcd_(src.etcd), truth_(std::move(truth)),
    key_(src.etcd->prefix + "nodes/" + cfg.name) {
  registration_ = std::make_unique<etcd::etcd_registration>(
    etcd_->client, key_, std::chrono::seconds(5), etcd_->reach,
    [this] { return describe(); });
}

cluster_member::~cluster_member() {
  registration_.reset();
}

std::string cluster_member::describe() {
  // Asked from the registration's thread: a scoped actor may block.
  caf::scoped_actor self{sys_};
  auto timeout = std::chrono::milliseconds(500);
  // The version every file holds: the least any writer applied.
  std::optional<uint64_t> applied;
  bool healthy = true;
  bool written = true;
  bool refreshed = true;
  for (size_t i = 0; i < cfg_.files.size(); ++i) {
    auto writer = sys_.registry().get<memcached_cfg_actor>(writer_child_id(i));
    if (!writer) {
      healthy = written = false;
      continue;
    }
    self->request(writer, timeout, status_atom::value)
      .receive(
        [&](const writer_status& st) {
          if (st.phase != writer_phase::idle)
            written = false;
          applied = std::min(applied.value_or(st.applied_version),
                             st.applied_version);
          if (!st.last_error.empty())
            healthy = false;
        },
        [&](const caf::error&) { healthy = written = false; });
  }
  // The version every checked file's consumer was shown to enforce: the
  // least confirmed; none when no file has a check.
  std::optional<uint64_t> confirmed;
  if (auto r = sys_.registry().get<refresher_actor>(refresher_child_id)) {
    self->request(r, timeout, status_atom::value)
      .receive(
        [&](const std::vector<refresh_status>& all) {
          for (auto& st : all) {
            // A check still running, or given up, is not through: the
            // consumer may enforce an older revision.
            auto checking = st.verifies
                            && (st.verify_state == "verifying"
                                || st.verify_state == "failed");
            if (st.pending || st.failures > 0 || checking)
              refreshed = false;
            if (st.failures > 0 || st.verify_state == "failed")
              healthy = false;
            if (st.verifies)
              confirmed = std::min(confirmed.value_or(st.confirmed_version),
                                   st.confirmed_version);
          }
        },
        // Busy with a slow refresh: not through yet.
        [&](const caf::error&) { refreshed = false; });
  }
  if (applied)
    if (auto e = etcd_->versions->find(*applied))
      held_ = e;
  // The follower's doubt is the node's: a registration that reaches a
  // healthy member says so, though the watch's member is stale.
  auto doubt = etcd_->reach->freshness().doubted();
  nlohmann::json out{{"name", cfg_.name},
                     {"healthy", healthy && !doubt},
                     {"synced", written && refreshed && held_.has_value()}};
  if (held_) {
    out["revision"] = held_->revision;
    out["digest"] = held_->digest;
  }
  if (doubt)
    out["source"] = etcd::describe_unproven(doubt->since, doubt->why);
  if (confirmed) {
    if (auto e = etcd_->versions->find(*confirmed))
      confirmed_ = e->revision;
    out["confirmed_revision"] = confirmed_.value_or(0);
  }
  // A node name is node.yaml's text: invalid UTF-8 in it is replaced, not
  // thrown on (this runs on the registration's thread).
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace mcfg
