#include "memcached_cfg/node/cluster_member.hpp"

#include <caf/actor_system.hpp>

#include <nlohmann/json.hpp>

#include "memcached_cfg/refresh/refresher.hpp"

namespace mcfg {

cluster_member::cluster_member(caf::actor_system& sys, const node_config& cfg,
                               const node_source& src,
                               std::shared_ptr<source_of_truth> truth,
                               std::shared_ptr<const status_board> board)
  : sys_(sys), cfg_(cfg), etcd_(src.etcd), truth_(std::move(truth)),
    board_(std::move(board)), key_(src.etcd->prefix + "nodes/" + cfg.name) {
  registration_ = std::make_unique<etcd::etcd_registration>(
    etcd_->client, key_, std::chrono::seconds(5), etcd_->reach,
    [this] { return describe(); });
}

cluster_member::~cluster_member() {
  registration_.reset();
}

cluster_member::files_summary cluster_member::summarize() const {
  // Read from the board: a writer stuck on its disk holds up nothing here.
  auto board = board_->read(sys_.clock().now());
  files_summary out;
  out.generation = board.generation;
  for (size_t i = 0; i < board.files.size(); ++i) {
    auto& st = board.files[i];
    auto live = sys_.registry().get<memcached_cfg_actor>(writer_child_id(i));
    if (!live || !board.published[i]) {
      out.healthy = out.written = false;
      continue;
    }
    if (st.phase != writer_phase::idle)
      out.written = false;
    // The version every file holds: the least any writer applied.
    out.applied = std::min(out.applied.value_or(st.applied_version),
                           st.applied_version);
    if (!st.last_error.empty())
      out.healthy = false;
  }
  for (auto& st : board.refreshes) {
    // A check still running, or given up, is not through: the consumer may
    // enforce an older revision.
    auto checking = st.verifies
                    && (st.verify_state == "verifying"
                        || st.verify_state == "failed");
    if (st.pending || st.failures > 0 || checking)
      out.refreshed = false;
    if (st.failures > 0 || st.verify_state == "failed")
      out.healthy = false;
    // The version every checked file's consumer was shown to enforce: the
    // least confirmed; none when no file has a check.
    if (st.verifies)
      out.confirmed = std::min(out.confirmed.value_or(st.confirmed_version),
                               st.confirmed_version);
  }
  return out;
}

std::string cluster_member::describe() {
  // Looked at every 100 ms: the files are summed up again only when one
  // of them published since (a board read copies every file's status).
  if (!summary_ || summary_->generation != board_->generation())
    summary_ = summarize();
  auto [generation, applied, healthy, written, refreshed, confirmed]
    = *summary_;
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
