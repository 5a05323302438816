#include "source/etcd_follower.hpp"

#include <openssl/evp.h>

#include <ctime>

#include "messages/config_change.hpp"
#include "messages/log.hpp"

namespace mcfg::etcd {

namespace {

constexpr const char* log_name = "etcd";

std::string users_key_prefix(const std::string& prefix) {
  return prefix + std::string{users_prefix};
}

} // namespace

std::string users_digest(const std::map<std::string, int64_t>& mod_revisions) {
  std::string text;
  for (auto& [key, rev] : mod_revisions) {
    text += key;
    text += '\0';
    text += std::to_string(rev);
    text += '\n';
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 0xf];
  }
  return out;
}

// -- etcd_reachability --------------------------------------------------------

void etcd_reachability::succeeded() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (since_)
    log::info(log_name, "source reachable again");
  since_.reset();
  why_.clear();
}

void etcd_reachability::failed(const std::string& why) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!since_) {
    since_ = clock::now();
    log::warning(log_name, "source unreachable, keeping the last good "
                           "version: "
                             + why);
  }
  why_ = why;
}

std::optional<std::pair<etcd_reachability::clock::time_point, std::string>>
etcd_reachability::unreachable() const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!since_)
    return std::nullopt;
  return std::make_pair(*since_, why_);
}

std::string describe_unreachable(etcd_reachability::clock::time_point since,
                                 const std::string& why) {
  auto t = etcd_reachability::clock::to_time_t(since);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string{"source unreachable since "} + buf + ": " + why;
}

// -- reading ------------------------------------------------------------------

namespace {

users_version to_version(const std::map<std::string, key_value>& kvs,
                         const std::string& prefix, int64_t revision) {
  users_version v;
  v.revision = revision;
  std::map<std::string, int64_t> mods;
  auto users = users_key_prefix(prefix);
  for (auto& [key, kv] : kvs) {
    mods.emplace(key, kv.mod_revision);
    v.users.push_back({key.substr(users.size()), kv.value,
                       "etcd " + key + " at revision "
                         + std::to_string(kv.mod_revision)});
  }
  v.digest = users_digest(mods);
  return v;
}

std::map<std::string, key_value> by_key(std::vector<key_value> kvs) {
  std::map<std::string, key_value> out;
  for (auto& kv : kvs) {
    auto key = kv.key;
    out.emplace(std::move(key), std::move(kv));
  }
  return out;
}

} // namespace

users_version read_users(client& c, const std::string& prefix,
                         int64_t revision) {
  auto r = c.range_prefix(users_key_prefix(prefix), revision);
  auto at = revision > 0 ? revision : r.revision;
  return to_version(by_key(std::move(r.kvs)), prefix, at);
}

// -- etcd_follower ------------------------------------------------------------

etcd_follower::etcd_follower(client_options opts, std::string prefix,
                             std::shared_ptr<etcd_reachability> reach,
                             version_handler on_version)
  : client_(opts),
    prefix_(std::move(prefix)),
    reach_(std::move(reach)),
    on_version_(std::move(on_version)),
    opts_(std::move(opts)) {
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
  return to_version(current_, prefix_, revision);
}

void etcd_follower::run() {
  backoff waits{opts_.backoff_initial, opts_.backoff_max};
  auto users = users_key_prefix(prefix_);
  while (!stopping_) {
    try {
      int64_t revision = 0;
      auto first = read_all(revision);
      reach_->succeeded();
      waits.reset();
      on_version_(std::move(first));
      auto end = client_.watch_prefix(
        users, revision + 1,
        [&](watch_revision r) {
          for (auto& ev : r.events) {
            if (ev.kind == watch_event::del)
              current_.erase(ev.kv.key);
            else
              current_[ev.kv.key] = ev.kv;
          }
          // An event was committed: a quorum answered. (A watch being set
          // up proves nothing: a member without quorum accepts it.)
          reach_->succeeded();
          on_version_(to_version(current_, prefix_, r.revision));
          return !stopping_;
        });
      if (end.reason == watch_end::compacted)
        log::info(log_name, "history compacted up to revision "
                              + std::to_string(end.compact_revision)
                              + ": reading every user again");
    } catch (const etcd_error& e) {
      if (e.code() == etcd_errc::cancelled || stopping_)
        return;
      reach_->failed(e.what());
      // A pause of its own: the client's wait ends with cancel() too.
      auto wait = waits.next();
      auto until = std::chrono::steady_clock::now() + wait;
      while (!stopping_ && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

// -- etcd_registration --------------------------------------------------------

etcd_registration::etcd_registration(client_options opts, std::string key,
                                     std::chrono::seconds ttl,
                                     std::shared_ptr<etcd_reachability> reach,
                                     std::function<std::string()> describe,
                                     std::chrono::milliseconds check_every)
  : client_(opts),
    key_(std::move(key)),
    ttl_(ttl),
    check_every_(check_every),
    reach_(std::move(reach)),
    describe_(std::move(describe)),
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
  } catch (const etcd_error&) {
    // The lease runs out by itself.
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
    }
  }
}

} // namespace mcfg::etcd
