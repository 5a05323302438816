#pragma once
// A client for etcd's v3 JSON gateway (ARCHITECTURE.md §6), on libcurl and
// nlohmann-json. Plain blocking C++: callers run it on their own thread,
// never on a CAF scheduler worker.
//
// What it covers is what the etcd source backend and mcfgctl need: range over
// a prefix at a revision, a streamed watch from a revision, transactions,
// leases (grant, keep-alive, revoke), compaction, and authentication. Keys
// and values travel base64-encoded and 64-bit integers as JSON strings, as
// the gateway's JSON mapping of the protobuf messages has them; this client
// hides both.
//
// Endpoints: a request goes to the endpoint that last answered; when it
// cannot be reached (connection refused, timeout, TLS failure) or answers
// "unavailable" (no leader, quorum lost), the next endpoint is tried. After a
// whole round of failures the client waits (exponential backoff with jitter,
// capped) and tries another round, until `retry_for` has passed; then the
// request fails with `etcd_errc::unavailable`.
//
// Every request carries etcd's require-leader metadata: a member that has
// lost its leader refuses at once ("unavailable", so the next endpoint is
// tried) and cancels a watch rather than keeping it open and silent.
//
// Authentication: with a username, the client fetches a token on first use
// and sends it in the Authorization header; a token the cluster calls invalid
// (expired, or the member restarted) is fetched again once and the request
// repeated. A refused password is `etcd_errc::auth_failed` at once: retrying
// would not help.
//
// No error, exception text or log line made here contains a password, a
// token or a value: they name endpoints, keys, and etcd's own message.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "memcached_cfg/etcd/backoff.hpp"

namespace mcfg::etcd {

enum class etcd_errc {
  /// No endpoint answered within `retry_for` (down, unreachable, no quorum).
  unavailable,
  /// The username or password was refused.
  auth_failed,
  /// The user may not do this (etcd's role permissions).
  permission_denied,
  /// The revision asked for has been compacted away.
  compacted,
  /// etcd answered something this client does not understand, or refused
  /// the request for another reason (its message is in what()).
  rejected,
  /// cancel() was called.
  cancelled,
};

class etcd_error : public std::runtime_error {
public:
  etcd_error(etcd_errc code, const std::string& what)
    : std::runtime_error(what), code_(code) {
  }
  etcd_errc code() const {
    return code_;
  }

private:
  etcd_errc code_;
};

struct tls_files {
  /// PEM file of the CA that signed the members' certificates.
  std::string ca;
  /// This client's certificate and key (PEM), for members that check
  /// client certificates; both empty for none.
  std::string cert;
  std::string key;
};

struct client_options {
  /// Client URLs, e.g. http://127.0.0.1:2379; https ones use `tls`.
  std::vector<std::string> endpoints;
  /// Empty: no authentication.
  std::string username;
  std::string password;
  std::optional<tls_files> tls;
  std::chrono::milliseconds connect_timeout{1000};
  /// For one unary request to one endpoint.
  std::chrono::milliseconds request_timeout{3000};
  /// How long a request keeps trying rounds of endpoints; 0: one round.
  std::chrono::milliseconds retry_for{5000};
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
  /// Not the client's own: the bound a follower of a prefix puts on going
  /// without proof that what it holds is the cluster's newest state
  /// (node.yaml source.etcd.stale_after; etcd_follower). Carried here
  /// because every part of an etcd source gets these options.
  std::chrono::milliseconds stale_after{10000};
};

struct key_value {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct range_result {
  /// The store's revision the range was read at.
  int64_t revision = 0;
  std::vector<key_value> kvs;
};

struct watch_event {
  enum kind_t { put, del };
  kind_t kind = put;
  /// For a delete: the key, with mod_revision the revision of the delete.
  key_value kv;
};

/// What a watch saw at one revision: every event of it (one transaction's
/// events all share its revision and arrive together).
struct watch_revision {
  int64_t revision = 0;
  std::vector<watch_event> events;
};

/// Why watch() returned.
struct watch_end {
  enum reason_t {
    /// The callback asked to stop.
    stopped,
    /// The start revision was compacted: re-read at `compact_revision` or
    /// later, then watch again.
    compacted,
  };
  reason_t reason = stopped;
  int64_t compact_revision = 0;
};

/// What probe_prefix() found: etcd's revision, read linearizably (so it is
/// the leader's, at the time of the read), how many keys the prefix holds
/// then, and whether any of them was written after the revision asked
/// about.
struct prefix_probe {
  int64_t revision = 0;
  int64_t count = 0;
  bool changed_since = false;
};

/// One operation of a transaction.
struct txn_op {
  enum kind_t { put, delete_range } kind = put;
  std::string key;
  /// delete_range: the end of the range (exclusive); empty: `key` only.
  std::string range_end;
  std::string value;
  int64_t lease = 0;
};

txn_op put_op(std::string key, std::string value, int64_t lease = 0);
/// Deletes one key. (etcd refuses a transaction that deletes a range and
/// puts into it, so replacing keys means naming the ones that go.)
txn_op delete_op(std::string key);

/// A compare of a transaction on the mod_revision of `key` (or of every key
/// in [key, range_end)): equal to `mod_revision` (0: the key does not
/// exist), or less than it.
struct txn_compare {
  enum result_t { equal, less } result = equal;
  std::string key;
  std::string range_end;
  int64_t mod_revision = 0;
};

struct txn_result {
  bool succeeded = false;
  int64_t revision = 0;
};

/// The first key after every key that starts with `prefix` (etcd's range
/// end for a prefix); "\0" when no such key exists (the range is then
/// "every key from `prefix` on").
std::string prefix_end(const std::string& prefix);

class client {
public:
  explicit client(client_options opts);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Every key under `prefix` at `revision` (0: the newest).
  range_result range_prefix(const std::string& prefix, int64_t revision = 0);

  /// Writes one key; returns the revision it made.
  int64_t put(const std::string& key, const std::string& value,
              int64_t lease = 0);

  /// Deletes every key under `prefix`; returns the revision.
  int64_t delete_prefix(const std::string& prefix);

  /// If every compare holds, runs `success`, else `failure`; one revision.
  txn_result txn(const std::vector<txn_compare>& compares,
                 const std::vector<txn_op>& success,
                 const std::vector<txn_op>& failure = {});

  /// A lease of `ttl` seconds; returns its id.
  int64_t lease_grant(int64_t ttl);
  /// Renews the lease; returns its remaining TTL, 0 when it is gone.
  int64_t lease_keepalive(int64_t id);
  void lease_revoke(int64_t id);

  /// Compacts the history up to `revision`.
  void compact(int64_t revision);

  /// A cheap linearizable look at `prefix`: etcd's current revision, the
  /// number of keys under it, and whether a key under it has a
  /// mod_revision after `after_revision` (at most one key travels, without
  /// its value). No key newer and the same count as at `after_revision`
  /// means nothing under the prefix changed between the two revisions.
  prefix_probe probe_prefix(const std::string& prefix, int64_t after_revision);

  /// Streams every change under `prefix` from `start_revision` on, one
  /// revision at a time, to `on_revision` (which returns false to stop),
  /// after calling `on_created` once the watch is established. Blocks. A
  /// stream that breaks (member gone) is resumed, on the next endpoint, from
  /// the revision after the last delivered: nothing is lost or repeated. A
  /// message of the stream this client cannot read counts as a failure of
  /// that endpoint: none of it is delivered, and the watch goes on at the
  /// next endpoint from the same revision.
  ///
  /// The watch is opened with etcd's require-leader metadata, so a member
  /// that loses its leader cancels it ("etcdserver: no leader") rather
  /// than keeping it open and silent, and the watch goes on elsewhere; and
  /// with progress notifications, each handed to `on_progress` with the
  /// revision the member's watch has caught up to (false stops, too).
  /// A broken stream is resumed after a short jittered pause, so that the
  /// watches of many nodes on a member that went away do not all land on
  /// the next one at the same instant.
  /// Throws etcd_error when no endpoint answers within `retry_for`.
  watch_end watch_prefix(const std::string& prefix, int64_t start_revision,
                         const std::function<bool(watch_revision)>& on_revision,
                         const std::function<void()>& on_created = {},
                         const std::function<bool(int64_t)>& on_progress = {});

  /// Ends the watch stream under way (from another thread), which
  /// watch_prefix then resumes on the next endpoint from the revision
  /// after the last delivered. For a stream its reader no longer trusts
  /// (no proof of freshness for too long). Does nothing to unary requests;
  /// with no stream under way, the next one to start is ended.
  void restart_watch();

  /// Makes every call under way, and every later one, fail with
  /// etcd_errc::cancelled, promptly. For shutting the caller's thread down.
  void cancel();

  /// The endpoint the client talks to now.
  std::string current_endpoint() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace mcfg::etcd
