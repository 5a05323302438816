#include "memcached_cfg/source/etcd_follower.hpp"

#include "memcached_cfg/messages/log.hpp"

namespace mcfg::etcd {

namespace {

constexpr const char* log_name = "etcd";

} // namespace

// -- etcd_follower ------------------------------------------------------------

etcd_follower::etcd_follower(client_options opts, std::string prefix,
                             std::shared_ptr<etcd_reachability> reach,
                             version_handler on_version)
  : client_(opts), prefix_(std::move(prefix)), reach_(std::move(reach)),
    on_version_(std::move(on_version)), opts_(std::move(opts)),
    waits_(opts_.backoff_initial, opts_.backoff_max) {
  thread_ = std::thread{[this] { run(); }};
}

etcd_follower::~etcd_follower() {
  stopping_ = true;
  client_.cancel();
  thread_.join();
}

uint64_t etcd_follower::full_reads() const {
  return full_reads_;
}

users_version etcd_follower::read_all(int64_t& revision) {
  auto r = client_.range_prefix(users_key_prefix(prefix_));
  revision = r.revision;
  current_ = by_key(std::move(r.kvs));
  ++full_reads_;
  return to_users_version(current_, prefix_, revision);
}

void etcd_follower::follow() {
  int64_t revision = 0;
  auto first = read_all(revision);
  // Reachable once the version is handed over: one that cannot be (an
  // exception) keeps the source reported as failing, not flapping.
  on_version_(std::move(first));
  reach_->succeeded();
  waits_.reset();
  auto end = client_.watch_prefix(
    users_key_prefix(prefix_), revision + 1, [&](watch_revision r) {
      for (auto& ev : r.events) {
        if (ev.kind == watch_event::del)
          current_.erase(ev.kv.key);
        else
          current_[ev.kv.key] = ev.kv;
      }
      on_version_(to_users_version(current_, prefix_, r.revision));
      // An event was committed: a quorum answered. (A watch being set
      // up proves nothing: a member without quorum accepts it.)
      reach_->succeeded();
      return !stopping_;
    });
  if (end.reason == watch_end::compacted)
    log::info(log_name, "history compacted up to revision "
                          + std::to_string(end.compact_revision)
                          + ": reading every user again");
}

void etcd_follower::run() {
  // The thread's entry: no exception may leave it (std::terminate would end
  // the node, and under systemd the next start would read the same revision
  // and end again). An unexpected one is logged, shown as the source being
  // unreachable (the files keep the last good version), and followed by a
  // full read after the same capped backoff as an outage.
  while (!stopping_) {
    try {
      follow();
      continue;
    } catch (const etcd_error& e) {
      if (e.code() == etcd_errc::cancelled || stopping_)
        return;
      reach_->failed(e.what());
    } catch (...) {
      if (stopping_)
        return;
      auto why = "following " + users_key_prefix(prefix_)
                 + " failed: " + describe_current_exception();
      log::error(log_name, why + "; reading every user again");
      reach_->failed(why);
    }
    // A pause of its own: the client's wait ends with cancel() too.
    auto until = std::chrono::steady_clock::now() + waits_.next();
    while (!stopping_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

} // namespace mcfg::etcd
