#include "memcached_cfg/etcd/client.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mcfg::etcd {

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// gRPC status codes etcd's gateway puts in an error body's "code".
constexpr int grpc_invalid_argument = 3;
constexpr int grpc_permission_denied = 7;
constexpr int grpc_out_of_range = 11;
constexpr int grpc_unavailable = 14;
constexpr int grpc_unauthenticated = 16;

std::string base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(raw.data()),
                           static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string unbase64(std::string_view text) {
  if (text.empty())
    return {};
  if (text.size() % 4 != 0)
    throw etcd_error(etcd_errc::rejected, "etcd sent malformed base64");
  std::string out(3 * text.size() / 4, '\0');
  auto n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(text.data()),
                           static_cast<int>(text.size()));
  if (n < 0)
    throw etcd_error(etcd_errc::rejected, "etcd sent malformed base64");
  // EVP_DecodeBlock counts the padding as zero bytes.
  auto padding = static_cast<size_t>(std::count(text.end() - 2, text.end(),
                                                '='));
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

/// The gateway writes 64-bit integers as strings; accepts numbers too.
int64_t int_field(const json& j, const char* name) {
  auto i = j.find(name);
  if (i == j.end() || i->is_null())
    return 0;
  if (i->is_string())
    return std::stoll(i->get<std::string>());
  return i->get<int64_t>();
}

std::string bytes_field(const json& j, const char* name) {
  auto i = j.find(name);
  return i == j.end() || !i->is_string() ? std::string{}
                                         : unbase64(i->get<std::string>());
}

key_value to_key_value(const json& j) {
  key_value kv;
  kv.key = bytes_field(j, "key");
  kv.value = bytes_field(j, "value");
  kv.create_revision = int_field(j, "create_revision");
  kv.mod_revision = int_field(j, "mod_revision");
  kv.version = int_field(j, "version");
  kv.lease = int_field(j, "lease");
  return kv;
}

int64_t header_revision(const json& j) {
  auto h = j.find("header");
  return h == j.end() ? 0 : int_field(*h, "revision");
}

json to_json(const txn_op& op) {
  if (op.kind == txn_op::put) {
    json put{{"key", base64(op.key)}, {"value", base64(op.value)}};
    if (op.lease != 0)
      put["lease"] = std::to_string(op.lease);
    return json{{"request_put", put}};
  }
  json del{{"key", base64(op.key)}};
  if (!op.range_end.empty())
    del["range_end"] = base64(op.range_end);
  return json{{"request_delete_range", del}};
}

/// A reply's JSON; a reply that is not JSON (a proxy's, or the gateway's
/// own plain-text refusal) becomes {"message": "HTTP <status>: <text>"}.
json parse_reply(const std::string& body, long status) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_object())
    return j;
  auto text = body.substr(0, body.find('\n')).substr(0, 200);
  return json{{"message", "HTTP status " + std::to_string(status)
                            + (text.empty() ? "" : ": " + text)}};
}

/// Where curl's write callback collects a reply; `on_line` set: a stream
/// of one JSON object per line, handed over line by line.
struct reply_sink {
  std::string body;
  std::function<bool(const std::string&)> on_line;
  bool stopped_by_reader = false;
};

size_t on_curl_data(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<reply_sink*>(user);
  auto n = size * count;
  sink->body.append(data, n);
  if (!sink->on_line)
    return n;
  size_t start = 0;
  for (auto nl = sink->body.find('\n'); nl != std::string::npos;
       nl = sink->body.find('\n', start)) {
    auto line = sink->body.substr(start, nl - start);
    start = nl + 1;
    if (line.find_first_not_of(" \r\t") == std::string::npos)
      continue;
    if (!sink->on_line(line)) {
      sink->stopped_by_reader = true;
      return 0; // makes curl end the transfer
    }
  }
  sink->body.erase(0, start);
  return n;
}

/// curl's shared connection cache is used from several threads (a watch and
/// unary requests): it wants a lock per kind of data.
struct share_locks {
  std::mutex locks[CURL_LOCK_DATA_LAST];
};

void lock_share(CURL*, curl_lock_data data, curl_lock_access, void* user) {
  static_cast<share_locks*>(user)->locks[data].lock();
}

void unlock_share(CURL*, curl_lock_data data, void* user) {
  static_cast<share_locks*>(user)->locks[data].unlock();
}

struct curl_global {
  curl_global() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
  }
};

} // namespace

// -- backoff ------------------------------------------------------------------

backoff::backoff(std::chrono::milliseconds initial,
                 std::chrono::milliseconds max)
  : initial_(std::max(initial, 1ms)),
    max_(std::max(max, initial_)),
    ceiling_(initial_),
    rng_(std::random_device{}()) {
}

std::chrono::milliseconds backoff::next() {
  auto ceiling = ceiling_.count();
  std::uniform_int_distribution<long> pick{ceiling / 2, ceiling};
  auto wait = std::chrono::milliseconds{pick(rng_)};
  ceiling_ = std::min(ceiling_ * 2, max_);
  return wait;
}

void backoff::reset() {
  ceiling_ = initial_;
}

txn_op put_op(std::string key, std::string value, int64_t lease) {
  txn_op op;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

txn_op delete_op(std::string key) {
  txn_op op;
  op.kind = txn_op::delete_range;
  op.key = std::move(key);
  return op;
}

std::string prefix_end(const std::string& prefix) {
  auto end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

// -- client -------------------------------------------------------------------

struct client::impl {
  client_options opts;
  share_locks locks;
  CURLSH* share = nullptr;

  mutable std::mutex mtx;
  std::condition_variable wake;
  size_t current = 0;
  std::string token;
  bool cancelled = false;
  std::vector<CURLM*> active;

  explicit impl(client_options o) : opts(std::move(o)) {
    static curl_global global;
    if (opts.endpoints.empty())
      throw std::invalid_argument("etcd client: no endpoints");
    share = curl_share_init();
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, lock_share);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, unlock_share);
    curl_share_setopt(share, CURLSHOPT_USERDATA, &locks);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }

  ~impl() {
    curl_share_cleanup(share);
  }

  std::string endpoint() const {
    std::lock_guard<std::mutex> guard{mtx};
    return opts.endpoints[current];
  }

  void fail_over(const std::string& from) {
    std::lock_guard<std::mutex> guard{mtx};
    if (opts.endpoints[current] == from)
      current = (current + 1) % opts.endpoints.size();
  }

  bool is_cancelled() const {
    std::lock_guard<std::mutex> guard{mtx};
    return cancelled;
  }

  void throw_if_cancelled() const {
    if (is_cancelled())
      throw etcd_error(etcd_errc::cancelled, "etcd client cancelled");
  }

  /// Waits `d` unless cancelled first.
  void pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> guard{mtx};
    wake.wait_for(guard, d, [this] { return cancelled; });
  }

  struct http_reply {
    /// Empty when the request got an HTTP answer.
    std::string transport_error;
    long status = 0;
  };

  /// One POST of `body` to `endpoint` + `path`; the reply goes to `sink`.
  /// `timeout` 0: none (a stream).
  http_reply post(const std::string& endpoint, const std::string& path,
                  const std::string& body, const std::string& auth,
                  std::chrono::milliseconds timeout, reply_sink& sink) {
    http_reply reply;
    CURL* easy = curl_easy_init();
    if (easy == nullptr) {
      reply.transport_error = "curl_easy_init failed";
      return reply;
    }
    auto url = endpoint + path;
    curl_slist* headers = curl_slist_append(nullptr,
                                            "Content-Type: application/json");
    std::string auth_header;
    if (!auth.empty()) {
      auth_header = "Authorization: " + auth;
      headers = curl_slist_append(headers, auth_header.c_str());
    }
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_SHARE, share);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(body.size()));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_curl_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(opts.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(timeout.count()));
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 2L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    // etcd serves gRPC and the JSON gateway on one port and sends HTTP/2
    // to gRPC: the gateway is spoken over HTTP/1.1.
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    if (opts.tls) {
      if (!opts.tls->ca.empty())
        curl_easy_setopt(easy, CURLOPT_CAINFO, opts.tls->ca.c_str());
      if (!opts.tls->cert.empty())
        curl_easy_setopt(easy, CURLOPT_SSLCERT, opts.tls->cert.c_str());
      if (!opts.tls->key.empty())
        curl_easy_setopt(easy, CURLOPT_SSLKEY, opts.tls->key.c_str());
    }
    auto rc = perform(easy);
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && sink.stopped_by_reader))
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &reply.status);
    else if (rc == CURLE_ABORTED_BY_CALLBACK)
      reply.transport_error = "cancelled";
    else
      reply.transport_error = errbuf[0] != '\0' ? errbuf
                                                : curl_easy_strerror(rc);
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    return reply;
  }

  /// Runs a transfer on its own multi handle, so cancel() can wake it.
  CURLcode perform(CURL* easy) {
    CURLM* multi = curl_multi_init();
    curl_multi_add_handle(multi, easy);
    {
      std::lock_guard<std::mutex> guard{mtx};
      active.push_back(multi);
    }
    CURLcode result = CURLE_ABORTED_BY_CALLBACK;
    int running = 1;
    while (!is_cancelled()) {
      curl_multi_perform(multi, &running);
      if (running == 0) {
        int left = 0;
        while (auto* msg = curl_multi_info_read(multi, &left))
          if (msg->msg == CURLMSG_DONE)
            result = msg->data.result;
        break;
      }
      curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    }
    {
      std::lock_guard<std::mutex> guard{mtx};
      active.erase(std::find(active.begin(), active.end(), multi));
    }
    curl_multi_remove_handle(multi, easy);
    curl_multi_cleanup(multi);
    return result;
  }

  std::string current_token() const {
    std::lock_guard<std::mutex> guard{mtx};
    return token;
  }

  /// A fresh token from `endpoint`; "" with `transport_error` set when the
  /// endpoint cannot be reached.
  std::string authenticate(const std::string& endpoint,
                           std::string& transport_error) {
    reply_sink sink;
    json body{{"name", opts.username}, {"password", opts.password}};
    auto reply = post(endpoint, "/v3/auth/authenticate", body.dump(), {},
                      opts.request_timeout, sink);
    if (!reply.transport_error.empty()) {
      transport_error = reply.transport_error;
      return {};
    }
    auto j = parse_reply(sink.body, reply.status);
    if (reply.status == 200 && j.is_object() && j.contains("token")) {
      std::lock_guard<std::mutex> guard{mtx};
      token = j["token"].get<std::string>();
      return token;
    }
    auto code = j.is_object() ? int_field(j, "code") : 0;
    auto message = error_message(j, reply.status);
    if (code == grpc_unavailable || reply.status == 503) {
      transport_error = message;
      return {};
    }
    throw etcd_error(etcd_errc::auth_failed,
                     "etcd refused user '" + opts.username + "' at "
                       + endpoint + ": " + message);
  }

  static std::string error_message(const json& j, long status) {
    if (j.is_object()) {
      for (auto* name : {"message", "error"}) {
        auto i = j.find(name);
        if (i != j.end() && i->is_string())
          return i->get<std::string>();
      }
    }
    return "HTTP status " + std::to_string(status);
  }

  /// Throws the etcd_error an error reply means, unless it is one worth
  /// trying elsewhere (returns then).
  static void classify(const json& j, long status, const std::string& where) {
    auto code = j.is_object() ? int_field(j, "code") : 0;
    auto message = error_message(j, status);
    auto what = "etcd at " + where + ": " + message;
    if (code == grpc_unavailable || status == 503 || status == 502)
      return;
    if (code == grpc_permission_denied)
      throw etcd_error(etcd_errc::permission_denied, what);
    if (code == grpc_out_of_range
        && message.find("compacted") != std::string::npos)
      throw etcd_error(etcd_errc::compacted, what);
    if (code == grpc_invalid_argument
        && (message.find("authentication failed") != std::string::npos
            || message.find("user name is empty") != std::string::npos))
      throw etcd_error(etcd_errc::auth_failed, what);
    throw etcd_error(etcd_errc::rejected, what);
  }

  /// A token to fetch again: expired or unknown (401, "unauthenticated"),
  /// or issued before the cluster's users or roles last changed ("revision
  /// of auth store is old").
  static bool invalid_token(const json& j, long status) {
    if (status == 401)
      return true;
    if (!j.is_object())
      return false;
    return int_field(j, "code") == grpc_unauthenticated
           || error_message(j, status).find("auth store is old")
                != std::string::npos;
  }

  /// Runs `attempt(endpoint, token)` against the endpoints in turn until
  /// one gives an answer (attempt returns true), with failover, backoff
  /// and re-authentication as the header describes. `attempt` sets
  /// `failure` and returns false when the endpoint could not serve it; it
  /// sets `token_refused` when the token was refused.
  template <class Attempt>
  void with_failover(Attempt attempt) {
    auto deadline = std::chrono::steady_clock::now() + opts.retry_for;
    backoff waits{opts.backoff_initial, opts.backoff_max};
    std::string last_failure;
    for (;;) {
      for (size_t tried = 0; tried < opts.endpoints.size(); ++tried) {
        throw_if_cancelled();
        auto ep = endpoint();
        auto tok = current_token();
        if (!opts.username.empty() && tok.empty()) {
          std::string failure;
          tok = authenticate(ep, failure);
          if (tok.empty()) {
            last_failure = ep + ": " + failure;
            fail_over(ep);
            continue;
          }
        }
        std::string failure;
        bool token_refused = false;
        if (attempt(ep, tok, failure, token_refused))
          return;
        if (token_refused && !opts.username.empty()) {
          // Expired or unknown to this member: a new token, same endpoint.
          std::string auth_failure;
          if (!authenticate(ep, auth_failure).empty()
              && attempt(ep, current_token(), failure, token_refused))
            return;
          if (token_refused)
            throw etcd_error(etcd_errc::auth_failed,
                             "etcd at " + ep + " refused a fresh token");
          if (!auth_failure.empty())
            failure = auth_failure;
        } else if (token_refused) {
          throw etcd_error(etcd_errc::auth_failed,
                           "etcd at " + ep
                             + " requires authentication (no username set)");
        }
        last_failure = ep + ": " + failure;
        fail_over(ep);
      }
      throw_if_cancelled();
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline)
        throw etcd_error(etcd_errc::unavailable,
                         "no etcd endpoint answered (last: " + last_failure
                           + ")");
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - now);
      pause(std::min(waits.next(), left));
    }
  }

  /// A unary call: the reply's JSON.
  json call(const std::string& path, const json& body) {
    json result;
    auto text = body.dump();
    with_failover([&](const std::string& ep, const std::string& tok,
                      std::string& failure, bool& token_refused) {
      reply_sink sink;
      auto reply = post(ep, path, text, tok, opts.request_timeout, sink);
      if (!reply.transport_error.empty()) {
        failure = reply.transport_error;
        return false;
      }
      auto j = parse_reply(sink.body, reply.status);
      if (reply.status == 200 && j.is_object()) {
        result = std::move(j);
        return true;
      }
      if (invalid_token(j, reply.status)) {
        token_refused = true;
        failure = error_message(j, reply.status);
        return false;
      }
      classify(j, reply.status, ep);
      failure = error_message(j, reply.status);
      return false;
    });
    return result;
  }
};

client::client(client_options opts)
  : impl_(std::make_unique<impl>(std::move(opts))) {
}

client::~client() = default;

range_result client::range_prefix(const std::string& prefix,
                                   int64_t revision) {
  json body{{"key", base64(prefix)}, {"range_end", base64(prefix_end(prefix))}};
  if (revision > 0)
    body["revision"] = std::to_string(revision);
  auto j = impl_->call("/v3/kv/range", body);
  range_result result;
  result.revision = header_revision(j);
  if (auto kvs = j.find("kvs"); kvs != j.end())
    for (auto& kv : *kvs)
      result.kvs.push_back(to_key_value(kv));
  return result;
}

int64_t client::put(const std::string& key, const std::string& value,
                    int64_t lease) {
  json body{{"key", base64(key)}, {"value", base64(value)}};
  if (lease != 0)
    body["lease"] = std::to_string(lease);
  return header_revision(impl_->call("/v3/kv/put", body));
}

int64_t client::delete_prefix(const std::string& prefix) {
  json body{{"key", base64(prefix)}, {"range_end", base64(prefix_end(prefix))}};
  return header_revision(impl_->call("/v3/kv/deleterange", body));
}

txn_result client::txn(const std::vector<txn_compare>& compares,
                       const std::vector<txn_op>& success,
                       const std::vector<txn_op>& failure) {
  json body{{"compare", json::array()},
            {"success", json::array()},
            {"failure", json::array()}};
  for (auto& c : compares) {
    json compare{{"key", base64(c.key)},
                 {"target", "MOD"},
                 {"result", c.result == txn_compare::equal ? "EQUAL" : "LESS"},
                 {"mod_revision", std::to_string(c.mod_revision)}};
    if (!c.range_end.empty())
      compare["range_end"] = base64(c.range_end);
    body["compare"].push_back(std::move(compare));
  }
  for (auto& op : success)
    body["success"].push_back(to_json(op));
  for (auto& op : failure)
    body["failure"].push_back(to_json(op));
  auto j = impl_->call("/v3/kv/txn", body);
  txn_result result;
  result.revision = header_revision(j);
  result.succeeded = j.value("succeeded", false);
  return result;
}

int64_t client::lease_grant(int64_t ttl) {
  auto j = impl_->call("/v3/lease/grant", json{{"TTL", std::to_string(ttl)}});
  return int_field(j, "ID");
}

int64_t client::lease_keepalive(int64_t id) {
  // The gateway maps this stream to one request and its one answer.
  auto j = impl_->call("/v3/lease/keepalive",
                       json{{"ID", std::to_string(id)}});
  auto result = j.find("result");
  return result == j.end() ? 0 : int_field(*result, "TTL");
}

void client::lease_revoke(int64_t id) {
  impl_->call("/v3/lease/revoke", json{{"ID", std::to_string(id)}});
}

void client::compact(int64_t revision) {
  impl_->call("/v3/kv/compaction",
              json{{"revision", std::to_string(revision)}});
}

watch_end client::watch_prefix(
  const std::string& prefix, int64_t start_revision,
  const std::function<bool(watch_revision)>& on_revision,
  const std::function<void()>& on_created) {
  auto next = start_revision;
  watch_end end;
  // Each pass of with_failover's attempt is one stream; it returns true
  // once the watch is over for good (stopped or compacted).
  for (;;) {
    // A stream that was established and then broke counts as progress: the
    // next round of endpoints gets a fresh `retry_for`.
    bool resume = false;
    impl_->with_failover([&](const std::string& ep, const std::string& tok,
                             std::string& failure, bool& token_refused) {
      json create{{"key", base64(prefix)},
                  {"range_end", base64(prefix_end(prefix))},
                  {"start_revision", std::to_string(next)}};
      auto body = json{{"create_request", create}}.dump();
      bool over = false;
      bool created = false;
      std::string cancel_reason;
      reply_sink sink;
      sink.on_line = [&](const std::string& line) {
        auto j = json::parse(line, nullptr, false);
        if (!j.is_object())
          return true;
        if (auto err = j.find("error"); err != j.end()) {
          // The gateway's own error for the stream (e.g. no leader).
          cancel_reason = err->is_object() ? err->value("message", "")
                                           : err->dump();
          return false;
        }
        auto r = j.find("result");
        if (r == j.end())
          return true;
        if (r->value("canceled", false)) {
          if (auto compact = int_field(*r, "compact_revision"); compact > 0) {
            end.reason = watch_end::compacted;
            end.compact_revision = compact;
            over = true;
          } else {
            cancel_reason = r->value("cancel_reason", "watch cancelled");
          }
          return false;
        }
        if (r->value("created", false)) {
          created = true;
          if (on_created)
            on_created();
        }
        auto events = r->find("events");
        if (events == r->end())
          return true;
        watch_revision batch;
        for (auto& e : *events) {
          watch_event ev;
          ev.kind = e.value("type", "PUT") == "DELETE" ? watch_event::del
                                                       : watch_event::put;
          ev.kv = to_key_value(e.value("kv", json::object()));
          if (ev.kv.mod_revision != batch.revision && !batch.events.empty()) {
            next = batch.revision + 1;
            if (!on_revision(std::move(batch))) {
              over = true;
              return false;
            }
            batch = {};
          }
          batch.revision = ev.kv.mod_revision;
          batch.events.push_back(std::move(ev));
        }
        if (!batch.events.empty()) {
          next = batch.revision + 1;
          if (!on_revision(std::move(batch))) {
            over = true;
            return false;
          }
        }
        return true;
      };
      auto reply = impl_->post(ep, "/v3/watch", body, tok, 0ms, sink);
      if (over)
        return true;
      if (!cancel_reason.empty()) {
        if (cancel_reason.find("auth token") != std::string::npos
            || cancel_reason.find("auth store is old") != std::string::npos
            || cancel_reason.find("user name is empty") != std::string::npos) {
          token_refused = true;
          failure = cancel_reason;
          return false;
        }
        if (cancel_reason.find("permission denied") != std::string::npos)
          throw etcd_error(etcd_errc::permission_denied,
                           "etcd at " + ep + ": " + cancel_reason);
        failure = cancel_reason;
        return false;
      }
      if (created) {
        impl_->fail_over(ep);
        resume = true;
        return true;
      }
      if (!reply.transport_error.empty()) {
        failure = reply.transport_error;
        return false;
      }
      if (reply.status != 200) {
        auto j = parse_reply(sink.body, reply.status);
        if (impl::invalid_token(j, reply.status)) {
          token_refused = true;
          failure = impl::error_message(j, reply.status);
          return false;
        }
        impl::classify(j, reply.status, ep);
        failure = impl::error_message(j, reply.status);
        return false;
      }
      failure = "watch stream ended";
      return false;
    });
    if (!resume)
      return end;
  }
}

void client::cancel() {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  impl_->cancelled = true;
  for (auto* multi : impl_->active)
    curl_multi_wakeup(multi);
  impl_->wake.notify_all();
}

std::string client::current_endpoint() const {
  return impl_->endpoint();
}

} // namespace mcfg::etcd
