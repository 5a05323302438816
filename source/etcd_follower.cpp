#include "memcached_cfg/source/etcd_follower.hpp"

#include <algorithm>

#include "memcached_cfg/messages/log.hpp"

namespace mcfg::etcd {

namespace {

constexpr const char* log_name = "etcd";

using namespace std::chrono_literals;

/// The prober's client: its request may take no longer than half the
/// bound, so that a member that hangs (a linearizable read on a member
/// without a leader waits for one) is left for the next in time, and the
/// bound is still applied while a probe fails.
client_options probe_options(client_options opts) {
  auto half = std::max<std::chrono::milliseconds>(opts.stale_after / 2, 100ms);
  opts.request_timeout = std::min(opts.request_timeout, half);
  opts.connect_timeout = std::min(opts.connect_timeout, half);
  opts.retry_for = half;
  return opts;
}

} // namespace

// -- etcd_follower ------------------------------------------------------------

etcd_follower::etcd_follower(client_options opts, std::string prefix,
                             std::shared_ptr<etcd_reachability> reach,
                             version_handler on_version)
  : client_(opts), probe_client_(probe_options(opts)),
    prefix_(std::move(prefix)), reach_(std::move(reach)),
    on_version_(std::move(on_version)), opts_(std::move(opts)),
    waits_(opts_.backoff_initial, opts_.backoff_max) {
  thread_ = std::thread{[this] { run(); }};
  prober_ = std::thread{[this] { probe_loop(); }};
  judge_ = std::thread{[this] { judge_loop(); }};
}

etcd_follower::~etcd_follower() {
  {
    std::lock_guard<std::mutex> guard{held_mtx_};
    stopping_ = true;
  }
  wake_prober_.notify_all();
  client_.cancel();
  probe_client_.cancel();
  thread_.join();
  prober_.join();
  judge_.join();
}

uint64_t etcd_follower::full_reads() const {
  return full_reads_;
}

std::chrono::milliseconds
etcd_follower::probe_interval(std::chrono::milliseconds stale_after) {
  return std::clamp<std::chrono::milliseconds>(stale_after / 4, 50ms, 2500ms);
}

void etcd_follower::proven(int64_t revision) {
  reach_->freshness().proven(revision, std::chrono::steady_clock::now(),
                             std::chrono::system_clock::now());
}

void etcd_follower::held(int64_t revision, size_t count) {
  std::lock_guard<std::mutex> guard{held_mtx_};
  held_revision_ = revision;
  held_count_ = count;
}

users_version etcd_follower::read_all(int64_t& revision) {
  // Linearizable (the range's default): a member cut off from its peers
  // cannot answer it with what it has, so the state read is etcd's newest.
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
  held(revision, current_.size());
  proven(revision);
  reach_->succeeded();
  waits_.reset();
  auto end = client_.watch_prefix(
    users_key_prefix(prefix_), revision + 1,
    [&](watch_revision r) {
      for (auto& ev : r.events) {
        if (ev.kind == watch_event::del)
          current_.erase(ev.kv.key);
        else
          current_[ev.kv.key] = ev.kv;
      }
      on_version_(to_users_version(current_, prefix_, r.revision));
      held(r.revision, current_.size());
      // An event was committed, and the member serving it has a leader
      // (the watch requires one): proof up to its revision.
      proven(r.revision);
      reach_->succeeded();
      return !stopping_;
    },
    {},
    [&](int64_t caught_up) {
      // The member's watch is caught up to `caught_up` and nothing under
      // users/ changed since what was handed over.
      proven(caught_up);
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
      // The watch cannot be followed at all: what it holds is not proven
      // from now on, whatever the registration's client finds.
      reach_->freshness().unproven(e.what(), true);
    } catch (...) {
      if (stopping_)
        return;
      auto why = "following " + users_key_prefix(prefix_)
                 + " failed: " + describe_current_exception();
      log::error(log_name, why + "; reading every user again");
      reach_->failed(why);
      reach_->freshness().unproven(why, true);
    }
    // A pause of its own, jittered (etcd/backoff.hpp): nodes that lost the
    // same cluster come back at different instants. The client's wait
    // ends with cancel() too.
    auto until = std::chrono::steady_clock::now() + waits_.next();
    while (!stopping_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void etcd_follower::probe_once(int& behind) {
  int64_t revision = 0;
  size_t count = 0;
  {
    std::lock_guard<std::mutex> guard{held_mtx_};
    revision = held_revision_;
    count = held_count_;
  }
  if (revision == 0)
    return; // Nothing handed over yet: the full read is the proof.
  auto sent = std::chrono::steady_clock::now();
  auto sent_wall = std::chrono::system_clock::now();
  auto p = probe_client_.probe_prefix(users_key_prefix(prefix_), revision);
  if (!p.changed_since && p.count == static_cast<int64_t>(count)) {
    // Nothing under users/ changed between what was handed over and the
    // leader's revision at the time the probe was sent.
    behind = 0;
    reach_->freshness().proven(p.revision, sent, sent_wall);
    return;
  }
  {
    // The watch may have delivered meanwhile: then that was the proof.
    std::lock_guard<std::mutex> guard{held_mtx_};
    if (held_revision_ != revision)
      return;
  }
  auto why = "etcd is at revision " + std::to_string(p.revision)
             + " with changes under " + users_key_prefix(prefix_)
             + " after revision " + std::to_string(revision)
             + " that the watch has not delivered";
  // Once may be a change in flight; twice, a probe interval apart, is a
  // watch that lags: in doubt now.
  reach_->freshness().unproven(why, ++behind >= 2);
}

void etcd_follower::probe_loop() {
  // A thread's entry: nothing may leave it. A probe's failure is a reason
  // for doubt, not an end. Probes may take a while (a member that hangs is
  // waited for up to the probe client's request_timeout): the bound is
  // applied by judge_loop meanwhile.
  auto every = probe_interval(opts_.stale_after);
  auto& fresh = reach_->freshness();
  int behind = 0;
  while (!stopping_) {
    {
      std::unique_lock<std::mutex> guard{held_mtx_};
      wake_prober_.wait_for(guard, every, [this] { return stopping_.load(); });
    }
    if (stopping_)
      return;
    try {
      if (std::chrono::steady_clock::now() - fresh.proven_at() >= every)
        probe_once(behind);
      else
        behind = 0; // The watch proved it meanwhile.
    } catch (const etcd_error& e) {
      if (e.code() == etcd_errc::cancelled)
        return;
      fresh.unproven("no linearizable read answered: " + std::string{e.what()});
    } catch (...) {
      fresh.unproven("a linearizable read failed: "
                     + describe_current_exception());
    }
  }
}

void etcd_follower::judge_loop() {
  // A thread's entry, on no etcd call: nothing here throws but the
  // standard library's locks.
  auto every = probe_interval(opts_.stale_after);
  auto& fresh = reach_->freshness();
  // When the watch was last moved for doubt; none while there is no doubt.
  // (A flag and a time point rather than an optional: GCC 12 at -O3 warns
  // that the optional's value may be read uninitialised.)
  bool moved = false;
  std::chrono::steady_clock::time_point moved_at{};
  while (!stopping_) {
    {
      // Awake when the bound runs out, not a tick later, so the doubt is
      // said within stale_after of the last proof.
      auto until = std::min(std::chrono::steady_clock::now() + every / 2,
                            fresh.proven_at() + opts_.stale_after
                              + std::chrono::milliseconds(1));
      std::unique_lock<std::mutex> guard{held_mtx_};
      wake_prober_.wait_until(guard, until,
                              [this] { return stopping_.load(); });
    }
    if (stopping_)
      return;
    auto now = std::chrono::steady_clock::now();
    if (!fresh.check(now, opts_.stale_after)) {
      moved = false;
      continue;
    }
    // In doubt: the watch's member is not to be trusted. Move it now, and
    // again each bound while the doubt lasts.
    if (!moved || now - moved_at > opts_.stale_after) {
      client_.restart_watch();
      moved = true;
      moved_at = now;
    }
  }
}

} // namespace mcfg::etcd
