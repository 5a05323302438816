#include "memcached_cfg/etcd/client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string_view>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "memcached_cfg/etcd/detail/watch_stream.hpp"
#include "memcached_cfg/etcd/detail/wire.hpp"

namespace mcfg::etcd {

using detail::base64;
using detail::header_revision;
using detail::int_field;
using detail::json;
using detail::to_json;
using detail::to_key_value;
using namespace std::chrono_literals;

namespace {

// gRPC status codes etcd's gateway puts in an error body's "code".
constexpr int grpc_invalid_argument = 3;
constexpr int grpc_permission_denied = 7;
constexpr int grpc_out_of_range = 11;
constexpr int grpc_unavailable = 14;
constexpr int grpc_unauthenticated = 16;

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

/// Where curl's write callback puts a reply: in `body`, or, with
/// `on_stream` set and once the status says the stream is served (200),
/// into `on_stream` piece by piece (false from it ends the transfer).
struct reply_sink {
  std::string body;
  std::function<bool(std::string_view)> on_stream;
  CURL* easy = nullptr;
  bool stopped_by_reader = false;
  /// What the callback threw (the caller's watch handler, or bad_alloc):
  /// kept here and rethrown once curl has returned, because an exception
  /// must not unwind through libcurl's C frames.
  std::exception_ptr thrown;
};

size_t on_curl_data(char* data, size_t size, size_t count,
                    void* user) noexcept {
  auto* sink = static_cast<reply_sink*>(user);
  auto n = size * count;
  try {
    long status = 0;
    if (sink->on_stream)
      curl_easy_getinfo(sink->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
      // A unary reply, or a stream's error reply: read whole.
      sink->body.append(data, n);
      return n;
    }
    if (!sink->on_stream(std::string_view{data, n})) {
      sink->stopped_by_reader = true;
      return 0; // makes curl end the transfer
    }
    return n;
  } catch (...) {
    sink->thrown = std::current_exception();
    return 0; // ends the transfer; post() rethrows
  }
}

/// Why one endpoint gave no answer: worth trying the next one.
struct refusal {
  std::string failure;
  /// The token was refused: fetch a fresh one and try once more.
  bool token_refused = false;
};

/// What one attempt at one endpoint came to: its answer, or why none.
template <class T>
using attempt_result = std::variant<T, refusal>;

/// A watch as it goes, across the streams it takes: what it covers, where
/// the next stream starts, whom it tells.
struct watch_request {
  const std::string& prefix;
  /// The revision after the last one delivered.
  int64_t next;
  const std::function<bool(watch_revision)>& on_revision;
  const std::function<void()>& on_created;
  const std::function<bool(int64_t)>& on_progress;
  /// Whether the stream under way delivered anything (a revision or a
  /// progress notification): then its breaking resets the pause.
  bool delivered = false;
};

/// How a watch stream that etcd served ended.
struct stream_outcome {
  enum kind_t {
    /// Stopped by the callback, or compacted (`end` says which): done.
    over,
    /// Established, then broken (member gone): resume on another endpoint.
    broke,
  };
  kind_t kind = over;
  watch_end end;
};

/// What one stream's items have come to so far.
struct stream_state {
  bool created = false;
  /// The watch is over: stopped by the callback, or compacted.
  std::optional<watch_end> over;
  /// etcd cancelled it, the gateway ended it, or it was unreadable: why.
  std::optional<std::string> refused;
};

/// Hands the items parsed so far to the callbacks, as curl delivers the
/// bytes (so a revision reaches the caller as soon as it arrives); false
/// once the stream is to end.
bool deliver(detail::watch_stream& stream, watch_request& w,
             stream_state& seen) {
  using item = detail::watch_item;
  while (auto x = stream.next()) {
    switch (x->kind) {
      case item::created:
        seen.created = true;
        if (w.on_created)
          w.on_created();
        break;
      case item::revision:
        if (x->batch.revision < w.next) {
          // A revision at or before one already delivered would put older
          // state over newer: the member is not to be trusted; resume
          // from the next revision on another.
          seen.refused = "revision " + std::to_string(x->batch.revision)
                         + " arrived after revision "
                         + std::to_string(w.next - 1) + " (out of order)";
          return false;
        }
        w.next = x->batch.revision + 1;
        w.delivered = true;
        if (!w.on_revision(std::move(x->batch))) {
          seen.over = watch_end{};
          return false;
        }
        break;
      case item::progress:
        // Caught up to a revision at or after the last one delivered;
        // anything older is a member behind this watch: ignored.
        w.delivered = true;
        if (w.on_progress && x->batch.revision >= w.next - 1
            && !w.on_progress(x->batch.revision)) {
          seen.over = watch_end{};
          return false;
        }
        break;
      case item::compacted:
        seen.over = watch_end{watch_end::compacted, x->compact_revision};
        return false;
      case item::canceled:
      case item::error:
      case item::malformed:
        seen.refused = std::move(x->message);
        return false;
    }
  }
  return !stream.ended();
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
  /// restart_watch() was called: the stream under way (or the next) ends.
  bool restart_stream = false;
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
    // etcd's require-leader (the gateway passes Grpc-Metadata-* on as gRPC
    // metadata): a member without a leader refuses at once, and cancels a
    // watch when it loses its leader, instead of serving what it has.
    headers = curl_slist_append(headers, "Grpc-Metadata-Hasleader: true");
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
    sink.easy = easy;
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
    auto rc = perform(easy, timeout.count() == 0);
    if (sink.thrown) {
      curl_slist_free_all(headers);
      curl_easy_cleanup(easy);
      std::rethrow_exception(sink.thrown);
    }
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

  /// Whether a stream is to end now (restart_watch() was called); clears
  /// the request.
  bool take_restart() {
    std::lock_guard<std::mutex> guard{mtx};
    return std::exchange(restart_stream, false);
  }

  bool restart_requested() const {
    std::lock_guard<std::mutex> guard{mtx};
    return restart_stream;
  }

  /// Runs a transfer on its own multi handle, so cancel() (and, for a
  /// `stream`, restart_watch()) can wake it.
  CURLcode perform(CURL* easy, bool stream) {
    CURLM* multi = curl_multi_init();
    curl_multi_add_handle(multi, easy);
    {
      std::lock_guard<std::mutex> guard{mtx};
      active.push_back(multi);
    }
    CURLcode result = CURLE_ABORTED_BY_CALLBACK;
    int running = 1;
    while (!is_cancelled() && !(stream && restart_requested())) {
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
    throw etcd_error(etcd_errc::auth_failed, "etcd refused user '"
                                               + opts.username + "' at "
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

  /// Runs `attempt(endpoint, token)`, which returns an attempt_result,
  /// against the endpoints in turn until one answers, with failover,
  /// backoff and re-authentication as the header describes; returns the
  /// answer.
  template <class Attempt>
  auto with_failover(Attempt attempt) {
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
        auto result = attempt(ep, tok);
        if (auto no = std::get_if<refusal>(&result); no && no->token_refused)
          result = with_fresh_token(ep, attempt);
        if (result.index() == 0)
          return std::get<0>(std::move(result));
        last_failure = ep + ": " + std::get<refusal>(result).failure;
        fail_over(ep);
      }
      next_round(deadline, waits, last_failure);
    }
  }

  /// `attempt` again at `ep` with a fresh token, after `ep` refused the one
  /// it had (expired, or unknown to this member).
  template <class Attempt>
  auto with_fresh_token(const std::string& ep, Attempt& attempt) {
    if (opts.username.empty())
      throw etcd_error(etcd_errc::auth_failed,
                       "etcd at " + ep
                         + " requires authentication (no username set)");
    std::string auth_failure;
    if (!authenticate(ep, auth_failure).empty()) {
      auto result = attempt(ep, current_token());
      auto no = std::get_if<refusal>(&result);
      if (!no || !no->token_refused)
        return result;
    }
    // A member that cannot hand out a token just now counts as refusing
    // it, too.
    throw etcd_error(etcd_errc::auth_failed,
                     "etcd at " + ep + " refused a fresh token");
  }

  /// After a round in which no endpoint answered: waits the backoff, or
  /// throws `unavailable` once `deadline` has passed.
  void next_round(std::chrono::steady_clock::time_point deadline,
                  backoff& waits, const std::string& last_failure) {
    throw_if_cancelled();
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      throw etcd_error(etcd_errc::unavailable,
                       "no etcd endpoint answered (last: " + last_failure
                         + ")");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline
                                                                      - now);
    pause(std::min(waits.next(), left));
  }

  /// Why an error reply is no answer; throws the etcd_error it means when
  /// no other endpoint would do better.
  static refusal refused_reply(const json& j, long status,
                               const std::string& ep) {
    if (invalid_token(j, status))
      return refusal{error_message(j, status), true};
    classify(j, status, ep);
    return refusal{error_message(j, status)};
  }

  /// A unary call: the reply's JSON.
  json call(const std::string& path, const json& body) {
    auto text = body.dump();
    return with_failover([&](const std::string& ep,
                             const std::string& tok) -> attempt_result<json> {
      reply_sink sink;
      auto reply = post(ep, path, text, tok, opts.request_timeout, sink);
      if (!reply.transport_error.empty())
        return refusal{reply.transport_error};
      auto j = parse_reply(sink.body, reply.status);
      if (reply.status == 200 && j.is_object())
        return j;
      return refused_reply(j, reply.status, ep);
    });
  }

  /// One watch stream at `ep`, from `w.next` on.
  attempt_result<stream_outcome>
  watch_once(const std::string& ep, const std::string& tok, watch_request& w) {
    json create{{"key", base64(w.prefix)},
                {"range_end", base64(prefix_end(w.prefix))},
                {"start_revision", std::to_string(w.next)},
                {"progress_notify", true}};
    auto body = json{{"create_request", create}}.dump();
    detail::watch_stream stream;
    stream_state seen;
    reply_sink sink;
    sink.on_stream = [&](std::string_view bytes) {
      stream.feed(bytes);
      return deliver(stream, w, seen);
    };
    w.delivered = false;
    auto reply = post(ep, "/v3/watch", body, tok, 0ms, sink);
    if (take_restart()) {
      // Its reader no longer trusts this member: the next one, from the
      // revision after the last delivered, with a fresh retry_for.
      fail_over(ep);
      return stream_outcome{stream_outcome::broke, {}};
    }
    if (seen.over)
      return stream_outcome{stream_outcome::over, *seen.over};
    if (seen.refused)
      return watch_refused(*seen.refused, ep);
    if (seen.created) {
      fail_over(ep);
      return stream_outcome{stream_outcome::broke, {}};
    }
    if (!reply.transport_error.empty())
      return refusal{reply.transport_error};
    if (reply.status != 200)
      return refused_reply(parse_reply(sink.body, reply.status), reply.status,
                           ep);
    return refusal{"watch stream ended"};
  }

  /// Why a watch that etcd cancelled, that the gateway ended or that could
  /// not be read is no answer; throws when no other endpoint would do
  /// better.
  static refusal watch_refused(const std::string& reason,
                               const std::string& ep) {
    if (reason.find("auth token") != std::string::npos
        || reason.find("auth store is old") != std::string::npos
        || reason.find("user name is empty") != std::string::npos)
      return refusal{reason, true};
    if (reason.find("permission denied") != std::string::npos)
      throw etcd_error(etcd_errc::permission_denied,
                       "etcd at " + ep + ": " + reason);
    return refusal{reason};
  }
};

client::client(client_options opts)
  : impl_(std::make_unique<impl>(std::move(opts))) {
}

client::~client() = default;

range_result client::range_prefix(const std::string& prefix, int64_t revision) {
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
  auto j = impl_->call("/v3/lease/keepalive", json{{"ID", std::to_string(id)}});
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

watch_end
client::watch_prefix(const std::string& prefix, int64_t start_revision,
                     const std::function<bool(watch_revision)>& on_revision,
                     const std::function<void()>& on_created,
                     const std::function<bool(int64_t)>& on_progress) {
  watch_request w{prefix, start_revision, on_revision, on_created, on_progress};
  // The pause before resuming a broken stream: jittered (so the watches of
  // many nodes do not come back in step), growing while streams break
  // without delivering anything, back to its floor after one that did.
  backoff rejoin{impl_->opts.backoff_initial, impl_->opts.backoff_max};
  for (;;) {
    auto outcome = impl_->with_failover(
      [&](const std::string& ep, const std::string& tok) {
        return impl_->watch_once(ep, tok, w);
      });
    if (outcome.kind == stream_outcome::over)
      return outcome.end;
    // A stream that was established and then broke counts as progress: the
    // next round of endpoints gets a fresh `retry_for`.
    if (w.delivered)
      rejoin.reset();
    impl_->pause(rejoin.next());
    impl_->throw_if_cancelled();
  }
}

void client::restart_watch() {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  impl_->restart_stream = true;
  for (auto* multi : impl_->active)
    curl_multi_wakeup(multi);
}

prefix_probe client::probe_prefix(const std::string& prefix,
                                  int64_t after_revision) {
  // keys_only with min_mod_revision: etcd filters the keys after reading
  // them but counts the whole range, so `count` is every key under the
  // prefix and `kvs` only the newer ones, of which limit keeps one.
  json body{{"key", base64(prefix)},
            {"range_end", base64(prefix_end(prefix))},
            {"keys_only", true},
            {"limit", "1"},
            {"min_mod_revision", std::to_string(after_revision + 1)}};
  auto j = impl_->call("/v3/kv/range", body);
  prefix_probe result;
  result.revision = header_revision(j);
  result.count = int_field(j, "count");
  auto kvs = j.find("kvs");
  result.changed_since = kvs != j.end() && kvs->is_array() && !kvs->empty();
  return result;
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
