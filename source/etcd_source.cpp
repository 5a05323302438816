#include "memcached_cfg/source/etcd_source.hpp"

#include <openssl/evp.h>

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <typeinfo>

#include <nlohmann/json.hpp>

#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/messages/log.hpp"

namespace mcfg::etcd {

namespace {

constexpr const char* log_name = "etcd";

/// `t`'s name as written in C++ (std::runtime_error), not mangled.
std::string type_name(const std::type_info& t) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> readable{
    abi::__cxa_demangle(t.name(), nullptr, nullptr, &status), std::free};
  return status == 0 && readable ? readable.get() : t.name();
}

} // namespace

std::string users_key_prefix(const std::string& prefix) {
  return prefix + std::string{users_prefix};
}

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

std::string describe_current_exception() {
  // Only texts known to hold no secret are repeated: etcd_error's (names
  // endpoints and etcd's message), the OS's. Any other exception's text may
  // quote what it read (nlohmann's and yaml-cpp's do), so only its type is.
  try {
    throw;
  } catch (const nlohmann::json::exception& e) {
    return "unexpected JSON error " + std::to_string(e.id);
  } catch (const etcd_error& e) {
    return e.what();
  } catch (const std::bad_alloc&) {
    return "out of memory";
  } catch (const std::system_error& e) {
    return std::string{"unexpected error: "} + e.what();
  } catch (const std::exception& e) {
    return "unexpected exception " + type_name(typeid(e));
  } catch (...) {
    return "unexpected exception of unknown type";
  }
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

namespace {

std::string utc_text(std::chrono::system_clock::time_point at) {
  auto t = std::chrono::system_clock::to_time_t(at);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

} // namespace

std::string describe_unreachable(etcd_reachability::clock::time_point since,
                                 const std::string& why) {
  return "source unreachable since " + utc_text(since) + ": " + why;
}

// -- etcd_freshness -----------------------------------------------------------

etcd_freshness::etcd_freshness(steady::time_point start,
                               wall::time_point start_wall)
  : at_(start), at_wall_(start_wall) {
}

void etcd_freshness::proven(int64_t revision, steady::time_point at,
                            wall::time_point at_wall) {
  std::lock_guard<std::mutex> guard{mtx_};
  // Proofs may arrive out of order (the watch and a probe on two
  // threads): the newest revision and the latest time each win.
  revision_ = std::max(revision_, revision);
  if (at > at_) {
    at_ = at;
    at_wall_ = at_wall;
  }
  why_.clear();
  known_stale_ = false;
  if (doubted_)
    log::info(log_name, "source proven fresh again at revision "
                          + std::to_string(revision_));
  doubted_ = false;
}

void etcd_freshness::unproven(const std::string& why, bool known_stale) {
  std::lock_guard<std::mutex> guard{mtx_};
  why_ = why;
  known_stale_ = known_stale_ || known_stale;
}

bool etcd_freshness::check(steady::time_point now,
                           std::chrono::milliseconds bound) {
  std::lock_guard<std::mutex> guard{mtx_};
  bool doubt = known_stale_ || now - at_ > bound;
  if (doubt && !doubted_) {
    if (why_.empty())
      why_ = "no event, progress notification or linearizable read proved "
             "the users current for more than "
             + std::to_string(bound.count()) + "ms";
    log::warning(log_name, describe_unproven(at_wall_, why_)
                             + "; the files keep the last good version");
  }
  doubted_ = doubt;
  return doubt;
}

std::optional<etcd_freshness::doubt> etcd_freshness::doubted() const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!doubted_)
    return std::nullopt;
  return doubt{at_wall_, why_};
}

int64_t etcd_freshness::revision() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return revision_;
}

etcd_freshness::steady::time_point etcd_freshness::proven_at() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return at_;
}

std::string describe_unproven(etcd_freshness::wall::time_point since,
                              const std::string& why) {
  return "source not proven fresh since " + utc_text(since) + ": " + why;
}

// -- reading ------------------------------------------------------------------

users_version to_users_version(const std::map<std::string, key_value>& kvs,
                               const std::string& prefix, int64_t revision) {
  users_version v;
  v.revision = revision;
  std::map<std::string, int64_t> mods;
  auto users = users_key_prefix(prefix);
  for (auto& [key, kv] : kvs) {
    mods.emplace(key, kv.mod_revision);
    // Where errors say a user came from is shown in logs and the status:
    // a key that is not valid UTF-8 is named with its bad bytes as \xHH
    // (parse_source_users refuses such a name).
    v.users.push_back({key.substr(users.size()), kv.value,
                       "etcd " + escape_invalid_utf8(key) + " at revision "
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

users_version read_users(client& c, const std::string& prefix,
                         int64_t revision) {
  auto r = c.range_prefix(users_key_prefix(prefix), revision);
  auto at = revision > 0 ? revision : r.revision;
  return to_users_version(by_key(std::move(r.kvs)), prefix, at);
}

} // namespace mcfg::etcd

namespace mcfg {

void etcd_versions::record(uint64_t version, entry e) {
  std::lock_guard<std::mutex> guard{mtx_};
  entries_[version] = std::move(e);
  while (entries_.size() > 1024)
    entries_.erase(entries_.begin());
}

std::optional<etcd_versions::entry>
etcd_versions::find(uint64_t version) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = entries_.find(version);
  if (i == entries_.end())
    return std::nullopt;
  return i->second;
}

} // namespace mcfg
