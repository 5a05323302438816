#include "memcached_cfg/node/etcd_registration.hpp"

#include "memcached_cfg/messages/log.hpp"

namespace mcfg::etcd {

namespace {

constexpr const char* log_name = "etcd";

} // namespace

// -- etcd_registration --------------------------------------------------------

etcd_registration::etcd_registration(client_options opts, std::string key,
                                     std::chrono::seconds ttl,
                                     std::shared_ptr<etcd_reachability> reach,
                                     std::function<std::string()> describe,
                                     std::chrono::milliseconds check_every)
  : client_(opts), key_(std::move(key)), ttl_(ttl), check_every_(check_every),
    reach_(std::move(reach)), describe_(std::move(describe)),
    opts_(std::move(opts)) {
  thread_ = std::thread{[this] { run(); }};
}

etcd_registration::~etcd_registration() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  wake_.notify_all();
  client_.cancel();
  thread_.join();
  if (lease_ == 0)
    return;
  // The thread's client is cancelled: one short try with a fresh one, so
  // the node's key goes now rather than when its lease runs out.
  auto quick = opts_;
  quick.retry_for = std::chrono::milliseconds(0);
  try {
    client{quick}.lease_revoke(lease_);
  } catch (...) {
    // The lease runs out by itself. (Any exception: this is a destructor.)
  }
}

void etcd_registration::update() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    poked_ = true;
  }
  wake_.notify_all();
}

uint64_t etcd_registration::writes() const {
  return writes_;
}

uint64_t etcd_registration::renewals() const {
  return renewals_;
}

void etcd_registration::run() {
  using clock = std::chrono::steady_clock;
  backoff waits{opts_.backoff_initial, opts_.backoff_max};
  // Renewed three times per TTL: one lost renewal does not lose the lease.
  auto renew_every = std::max<std::chrono::milliseconds>(
    std::chrono::milliseconds(100),
    std::chrono::duration_cast<std::chrono::milliseconds>(ttl_) / 3);
  auto next_renewal = clock::now();
  std::optional<std::string> written;
  std::chrono::milliseconds pause{0};
  for (;;) {
    {
      std::unique_lock<std::mutex> guard{mtx_};
      // After a failure, wait the backoff out; else look again at what
      // describe() says every check_every (or when update() is called).
      auto until = clock::now() + (pause.count() > 0 ? pause : check_every_);
      if (pause.count() == 0)
        until = std::min(until, next_renewal);
      wake_.wait_until(guard, until, [this] { return stopping_ || poked_; });
      if (stopping_)
        return;
      poked_ = false;
    }
    try {
      bool fresh_lease = false;
      if (lease_ == 0) {
        lease_ = client_.lease_grant(ttl_.count());
        fresh_lease = true;
        next_renewal = clock::now() + renew_every;
      } else if (clock::now() >= next_renewal) {
        if (client_.lease_keepalive(lease_) == 0) {
          log::warning(log_name, "registration lease expired: registering "
                                 "again");
          lease_ = client_.lease_grant(ttl_.count());
          fresh_lease = true;
        } else {
          ++renewals_;
        }
        next_renewal = clock::now() + renew_every;
      }
      auto text = describe_();
      if (fresh_lease || text != written) {
        // A put does not extend the lease: renewals keep their own pace,
        // however often what the node says changes.
        client_.put(key_, text, lease_);
        written = std::move(text);
        ++writes_;
      }
      reach_->succeeded();
      waits.reset();
      pause = std::chrono::milliseconds(0);
    } catch (const etcd_error& e) {
      if (e.code() == etcd_errc::cancelled)
        return;
      reach_->failed(e.what());
      next_renewal = clock::now();
      pause = waits.next();
    } catch (...) {
      // The thread's entry: nothing may end it in std::terminate. What
      // describe() or the client threw unexpectedly is logged and reported
      // as a failure, and tried again after the backoff.
      auto why = "registering " + key_
                 + " failed: " + describe_current_exception();
      log::error(log_name, why);
      reach_->failed(why);
      next_renewal = clock::now();
      pause = waits.next();
    }
  }
}

} // namespace mcfg::etcd
