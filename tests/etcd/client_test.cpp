// The etcd client against a real three-member etcd cluster (started by
// tests/support/etcd_cluster.hpp on loopback), and the cluster helper itself.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "memcached_cfg/etcd/client.hpp"
#include "source/etcd_fixture.hpp"

using namespace mcfg;
using namespace mcfg::etcd;
using namespace std::chrono_literals;
using mcfg::test::etcd_cluster;

namespace {

using test::error_of;
using test::options_for;
using test::shared_cluster;

/// Fulfils `created` when the watch is first created (a watch resumed on
/// another member is created again).
std::function<void()> first_creation(std::promise<void>& created) {
  return [&created, first = true]() mutable {
    if (first) {
      first = false;
      created.set_value();
    }
  };
}

} // namespace

TEST_CASE("prefix_end: the first key after the prefix's keys") {
  CHECK(prefix_end("/a/") == "/a0");
  CHECK(prefix_end("ab") == "ac");
  CHECK(prefix_end(std::string{"a\xff"}) == "b");
  CHECK(prefix_end(std::string{"\xff\xff"}) == std::string(1, '\0'));
}

TEST_CASE("backoff: doubles with jitter up to the cap, reset starts over") {
  backoff b{100ms, 800ms};
  std::vector<std::pair<long, long>> bounds{{50, 100},  {100, 200}, {200, 400},
                                            {400, 800}, {400, 800}, {400, 800}};
  std::set<long> seen;
  for (auto [lo, hi] : bounds) {
    auto w = b.next().count();
    CHECK(w >= lo);
    CHECK(w <= hi);
    seen.insert(w);
  }
  b.reset();
  auto w = b.next().count();
  CHECK(w >= 50);
  CHECK(w <= 100);
  // Jitter: many draws at the cap are not all one value.
  std::set<long> capped;
  for (int i = 0; i < 50; ++i)
    capped.insert(b.next().count());
  CHECK(capped.size() > 1);
}

TEST_CASE("etcd_cluster: three members, each healthy, one keyspace") {
  REQUIRE(test::etcd_installed());
  auto& cluster = shared_cluster();
  REQUIRE(cluster.size() == 3);
  std::set<std::string> urls;
  for (size_t i = 0; i < cluster.size(); ++i) {
    CHECK(cluster.healthy(i));
    CHECK(cluster.endpoint(i).rfind("http://127.0.0.1:", 0) == 0);
    urls.insert(cluster.endpoint(i));
  }
  CHECK(urls.size() == 3);
  cluster.etcdctl_ok({"put", "/harness/k", "v"});
  auto members = cluster.etcdctl_ok({"member", "list"});
  CHECK(std::count(members.begin(), members.end(), '\n') == 3);
}

TEST_CASE("client: put, range over a prefix at a revision, values verbatim") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  std::string binary{"line\nwith \0 and \xff", 17};
  auto r1 = c.put("/range/users/alice", R"({"password":"a"})");
  auto r2 = c.put("/range/users/bob", binary);
  c.put("/range0", "outside: the byte after '/'");
  c.put("/rangex/users/eve", "outside");
  CHECK(r2 > r1);

  auto now = c.range_prefix("/range/");
  CHECK(now.revision >= r2);
  REQUIRE(now.kvs.size() == 2);
  CHECK(now.kvs[0].key == "/range/users/alice");
  CHECK(now.kvs[0].value == R"({"password":"a"})");
  CHECK(now.kvs[0].mod_revision == r1);
  CHECK(now.kvs[1].key == "/range/users/bob");
  CHECK(now.kvs[1].value == binary);

  auto then = c.range_prefix("/range/", r1);
  CHECK(then.revision >= r2); // the header: the store's newest revision
  REQUIRE(then.kvs.size() == 1);
  CHECK(then.kvs[0].key == "/range/users/alice");

  CHECK(c.range_prefix("/nothing-here/").kvs.empty());
}

TEST_CASE("client: a txn's deletes and puts share one revision") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  c.put("/txn/users/old", "1");
  c.put("/txn/users/keep", "1");
  auto result = c.txn({}, {delete_op("/txn/users/old"),
                           put_op("/txn/users/keep", "2"),
                           put_op("/txn/users/new", "3")});
  CHECK(result.succeeded);
  auto after = c.range_prefix("/txn/");
  REQUIRE(after.kvs.size() == 2);
  CHECK(after.kvs[0].key == "/txn/users/keep");
  CHECK(after.kvs[0].value == "2");
  CHECK(after.kvs[1].key == "/txn/users/new");
  for (auto& kv : after.kvs)
    CHECK(kv.mod_revision == result.revision);

  // A compare that fails runs the failure branch only.
  txn_compare unchanged;
  unchanged.key = "/txn/users/keep";
  unchanged.mod_revision = 1;
  auto missed = c.txn({unchanged}, {put_op("/txn/a", "x")},
                      {put_op("/txn/b", "y")});
  CHECK_FALSE(missed.succeeded);
  auto keys = c.range_prefix("/txn/");
  CHECK(keys.kvs.size() == 3);
  CHECK(keys.kvs[0].key == "/txn/b");

  // A range compare: nothing under the prefix changed after a revision.
  txn_compare quiet;
  quiet.result = txn_compare::less;
  quiet.key = "/txn/users/";
  quiet.range_end = prefix_end("/txn/users/");
  quiet.mod_revision = result.revision + 1;
  CHECK(c.txn({quiet}, {put_op("/txn/c", "z")}).succeeded);
  quiet.mod_revision = result.revision;
  CHECK_FALSE(c.txn({quiet}, {put_op("/txn/d", "z")}).succeeded);
}

TEST_CASE("client: a watch delivers each revision whole, in order") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto start = c.put("/watch/users/a", "1");
  std::vector<watch_revision> seen;
  std::atomic<bool> created{false};
  std::thread watcher{[&] {
    c.watch_prefix(
      "/watch/", start,
      [&](watch_revision r) {
        seen.push_back(std::move(r));
        return seen.size() < 4;
      },
      [&] { created = true; });
  }};
  client writer{options_for(cluster)};
  auto r2 = writer
              .txn({}, {put_op("/watch/users/b", "2"),
                        put_op("/watch/users/c", "3")})
              .revision;
  writer.put("/elsewhere/x", "not watched");
  auto r3 = writer.delete_prefix("/watch/users/a");
  auto r4 = writer.put("/watch/users/b", "4");
  watcher.join();
  CHECK(created);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0].revision == start);
  CHECK(seen[1].revision == r2);
  REQUIRE(seen[1].events.size() == 2);
  CHECK(seen[1].events[0].kv.key == "/watch/users/b");
  CHECK(seen[1].events[1].kv.key == "/watch/users/c");
  CHECK(seen[2].revision == r3);
  REQUIRE(seen[2].events.size() == 1);
  CHECK(seen[2].events[0].kind == watch_event::del);
  CHECK(seen[2].events[0].kv.key == "/watch/users/a");
  CHECK(seen[3].revision == r4);
  CHECK(seen[3].events[0].kv.value == "4");
}

TEST_CASE(
  "client: a watch from a compacted revision ends with the compaction") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto first = c.put("/compact/k", "1");
  auto last = c.put("/compact/k", "2");
  c.compact(last);
  bool called = false;
  auto end = c.watch_prefix("/compact/", first, [&](watch_revision) {
    called = true;
    return true;
  });
  CHECK(end.reason == watch_end::compacted);
  CHECK(end.compact_revision == last);
  CHECK_FALSE(called);
  CHECK(error_of([&] { c.range_prefix("/compact/", first); })
        == etcd_errc::compacted);
}

TEST_CASE("client: an exception from the watch callback reaches the caller "
          "once curl has returned, and the client goes on working") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto first = c.put("/throwing/users/a", "1");
  struct handler_failed : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  int calls = 0;
  bool caught = false;
  try {
    c.watch_prefix("/throwing/", first, [&](watch_revision) -> bool {
      ++calls;
      throw handler_failed{"the handler failed"};
    });
  } catch (const handler_failed& e) {
    caught = std::string{e.what()} == "the handler failed";
  }
  CHECK(caught);
  CHECK(calls == 1); // thrown once: not retried on another member
  // The transfer was ended cleanly: the same client still answers.
  auto later = c.put("/throwing/users/b", "2");
  CHECK(later > first);
  CHECK(c.range_prefix("/throwing/").kvs.size() == 2);
}

namespace {

/// A fake JSON gateway on loopback: answers the n-th connection with
/// `streams[n]` (HTTP/1.1, the body ending at close) and records each
/// request's body.
class fake_gateway {
public:
  explicit fake_gateway(std::vector<std::string> streams)
    : streams_(std::move(streams)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(fd_, 4) == 0);
    thread_ = std::thread{[this] { serve(); }};
  }

  ~fake_gateway() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }

  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> guard{mtx_};
    return bodies_;
  }

private:
  void serve() {
    for (auto& stream : streams_) {
      int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0)
        return;
      std::string in;
      char buf[4096];
      size_t body_at = std::string::npos;
      size_t length = 0;
      while (body_at == std::string::npos || in.size() < body_at + length) {
        auto n = ::read(conn, buf, sizeof buf);
        if (n <= 0)
          break;
        in.append(buf, static_cast<size_t>(n));
        if (body_at == std::string::npos
            && (body_at = in.find("\r\n\r\n")) != std::string::npos) {
          body_at += 4;
          auto cl = in.find("Content-Length: ");
          if (cl != std::string::npos)
            length = std::stoul(in.substr(cl + 16));
        }
      }
      {
        std::lock_guard<std::mutex> guard{mtx_};
        bodies_.push_back(body_at == std::string::npos ? ""
                                                       : in.substr(body_at));
      }
      auto out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 "Connection: close\r\n\r\n"
                 + stream;
      (void)!::write(conn, out.data(), out.size());
      ::close(conn);
    }
  }

  std::vector<std::string> streams_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::mutex mtx_;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

/// One watch response line: the events of `revision`, one put of `key`.
std::string revision_line(int64_t revision, const std::string& b64_key) {
  auto rev = "\"" + std::to_string(revision) + "\"";
  return R"({"result":{"header":{"revision":)" + rev + R"(},"events":[{"kv":)"
         + R"({"key":")" + b64_key + R"(","create_revision":)" + rev
         + R"(,"mod_revision":)" + rev + R"(,"value":"eA==","version":"1"}}]}})"
         + "\n";
}

} // namespace

TEST_CASE("client: a watch revision at or before one delivered fails the "
          "member over and the watch resumes after the last one delivered") {
  const std::string created = R"({"result":{"created":true}})"
                              "\n";
  const std::string b64_users_a = "L3cvdXNlcnMvYQ=="; // /w/users/a
  fake_gateway gw{
    {created + revision_line(5, b64_users_a) + revision_line(4, b64_users_a),
     created + revision_line(6, b64_users_a)}};
  client_options opts;
  opts.endpoints = {gw.endpoint()};
  opts.retry_for = std::chrono::milliseconds(3000);
  client c{opts};
  std::vector<int64_t> seen;
  c.watch_prefix("/w/", 5, [&](watch_revision r) {
    seen.push_back(r.revision);
    return r.revision < 6;
  });
  CHECK(seen == std::vector<int64_t>{5, 6}); // 4 never delivered
  auto bodies = gw.bodies();
  REQUIRE(bodies.size() == 2);
  CHECK(bodies[0].find(R"("start_revision":"5")") != std::string::npos);
  CHECK(bodies[1].find(R"("start_revision":"6")") != std::string::npos);
}

TEST_CASE("client: a lease keeps its key while kept alive, revoked both go") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto lease = c.lease_grant(5);
  CHECK(lease != 0);
  c.put("/lease/nodes/n1", "{}", lease);
  auto ttl = c.lease_keepalive(lease);
  CHECK(ttl > 0);
  CHECK(ttl <= 5);
  REQUIRE(c.range_prefix("/lease/").kvs.size() == 1);
  CHECK(c.range_prefix("/lease/").kvs[0].lease == lease);
  c.lease_revoke(lease);
  CHECK(c.range_prefix("/lease/").kvs.empty());
  CHECK(c.lease_keepalive(lease) == 0);
}

TEST_CASE("client: cancel ends a watch that waits for changes, promptly") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto rev = c.put("/cancel/k", "1");
  std::promise<void> created;
  std::optional<etcd_errc> code;
  std::thread watcher{[&] {
    try {
      c.watch_prefix(
        "/cancel/", rev + 1, [](watch_revision) { return true; },
        first_creation(created));
    } catch (const etcd_error& e) {
      code = e.code();
    }
  }};
  if (created.get_future().wait_for(5s) != std::future_status::ready) {
    c.cancel();
    watcher.join();
    FAIL("the watch was not created within 5 s");
  }
  auto t0 = std::chrono::steady_clock::now();
  c.cancel();
  watcher.join();
  CHECK(std::chrono::steady_clock::now() - t0 < 500ms);
  CHECK(code == etcd_errc::cancelled);
  CHECK(error_of([&] { c.put("/cancel/k", "2"); }) == etcd_errc::cancelled);
}

TEST_CASE("client: no endpoint reachable is 'unavailable' after retry_for") {
  client_options opts;
  opts.endpoints = {
    "http://127.0.0.1:" + std::to_string(test::free_loopback_port()),
    "http://127.0.0.1:" + std::to_string(test::free_loopback_port())};
  opts.retry_for = 300ms;
  opts.backoff_initial = 20ms;
  client c{opts};
  auto t0 = std::chrono::steady_clock::now();
  try {
    c.range_prefix("/x/");
    FAIL("no error");
  } catch (const etcd_error& e) {
    CHECK(e.code() == etcd_errc::unavailable);
    CHECK(std::string{e.what()}.find("no etcd endpoint answered")
          != std::string::npos);
  }
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 300ms);
  CHECK(took < 3s);
}

TEST_CASE("client: one member killed, requests and a watch fail over") {
  etcd_cluster cluster;
  auto opts = options_for(cluster);
  client c{opts};
  auto start = c.put("/fo/k", "0");
  REQUIRE(c.current_endpoint() == cluster.endpoint(0));
  std::vector<int64_t> seen;
  std::promise<void> created;
  std::thread watcher{[&] {
    c.watch_prefix(
      "/fo/", start + 1,
      [&](watch_revision r) {
        seen.push_back(r.revision);
        return seen.size() < 3;
      },
      first_creation(created));
  }};
  if (created.get_future().wait_for(10s) != std::future_status::ready) {
    c.cancel();
    watcher.join();
    FAIL("the watch was not created within 10 s");
  }
  client writer{opts};
  auto r1 = writer.put("/fo/k", "1");
  cluster.kill_member(0);
  // The writer's endpoint is gone: it moves on. The watch's stream breaks
  // and resumes elsewhere after r1, so r2 and r3 arrive exactly once.
  auto r2 = writer.put("/fo/k", "2");
  CHECK(writer.current_endpoint() != cluster.endpoint(0));
  auto r3 = writer.put("/fo/k", "3");
  watcher.join();
  CHECK(seen == std::vector<int64_t>{r1, r2, r3});
}

TEST_CASE("client: quorum lost is 'unavailable', a member back it answers") {
  etcd_cluster cluster;
  auto opts = options_for(cluster);
  opts.request_timeout = 700ms;
  opts.retry_for = 1500ms;
  client c{opts};
  c.put("/q/k", "0");
  cluster.kill_member(1);
  cluster.kill_member(2);
  CHECK(error_of([&] { c.put("/q/k", "1"); }) == etcd_errc::unavailable);
  cluster.restart_member(2);
  CHECK(c.put("/q/k", "2") > 0);
  CHECK(c.range_prefix("/q/").kvs.at(0).value == "2");
}

TEST_CASE("client: authentication, a refused password, a revoked token") {
  etcd_cluster cluster;
  cluster.etcdctl_ok({"user", "add", "root", "--new-user-password=rootpw"});
  cluster.etcdctl_ok({"role", "add", "mcfg"});
  cluster.etcdctl_ok({"role", "grant-permission", "mcfg", "--prefix=true",
                      "readwrite", "/auth/"});
  cluster.etcdctl_ok({"user", "add", "mcfgd", "--new-user-password=pw1"});
  cluster.etcdctl_ok({"user", "grant-role", "mcfgd", "mcfg"});
  cluster.etcdctl_ok({"auth", "enable"});
  cluster.set_etcdctl_user("root:rootpw");

  auto opts = options_for(cluster);
  opts.username = "mcfgd";
  opts.password = "pw1";
  client c{opts};
  auto rev = c.put("/auth/users/a", "1");
  CHECK(c.range_prefix("/auth/").kvs.size() == 1);
  CHECK(error_of([&] { c.put("/other/x", "1"); })
        == etcd_errc::permission_denied);

  // A wrong password is refused at once, and never shows in the error.
  auto wrong = opts;
  wrong.password = "not-it";
  client bad{wrong};
  try {
    bad.range_prefix("/auth/");
    FAIL("no error");
  } catch (const etcd_error& e) {
    CHECK(e.code() == etcd_errc::auth_failed);
    CHECK(std::string{e.what()}.find("not-it") == std::string::npos);
  }
  auto none = options_for(cluster);
  client anonymous{none};
  CHECK(error_of([&] { anonymous.range_prefix("/auth/"); })
        == etcd_errc::auth_failed);

  // A watch with a token works too.
  bool got = false;
  c.watch_prefix("/auth/", rev, [&](watch_revision r) {
    got = r.revision == rev;
    return false;
  });
  CHECK(got);

  // Setting the password (even to the same one) invalidates every token of
  // the user: the next request is refused, and the client authenticates
  // again and repeats it.
  cluster.etcdctl_ok({"user", "passwd", "mcfgd", "--interactive=false"},
                     std::string{"pw1\n"});
  auto again = c.put("/auth/users/b", "2");
  CHECK(again > rev);
  CHECK(c.range_prefix("/auth/").kvs.size() == 2);
}

TEST_CASE("backoff: two clients' waits are not in lock-step") {
  // Each backoff draws from its own randomly seeded generator: two nodes
  // that lost the same member at the same instant do not come back
  // together round after round.
  backoff a{50ms, 2000ms};
  backoff b{50ms, 2000ms};
  int same = 0;
  for (int i = 0; i < 20; ++i)
    if (a.next() == b.next())
      ++same;
  CHECK(same < 20);
}

TEST_CASE("client: probe_prefix counts the keys and says whether one was "
          "written after a revision") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  c.put("/probe/users/a", "secret-a");
  auto r1 = c.put("/probe/users/b", "secret-b");
  c.put("/probe/other", "not under the prefix");
  auto p = c.probe_prefix("/probe/users/", r1);
  CHECK(p.count == 2);
  CHECK_FALSE(p.changed_since);
  CHECK(p.revision > r1);
  auto r2 = c.put("/probe/users/a", "secret-a2");
  p = c.probe_prefix("/probe/users/", r1);
  CHECK(p.count == 2);
  CHECK(p.changed_since);
  CHECK(p.revision >= r2);
  // A delete leaves no newer key: the count tells.
  auto r3 = c.delete_prefix("/probe/users/b");
  p = c.probe_prefix("/probe/users/", r3);
  CHECK(p.count == 1);
  CHECK_FALSE(p.changed_since);
}

TEST_CASE("client: restart_watch resumes the watch on the next endpoint "
          "after the last revision delivered, nothing lost or repeated") {
  auto& cluster = shared_cluster();
  auto opts = options_for(cluster);
  client c{opts};
  client writer{opts};
  auto start = writer.put("/rw/k", "0");
  std::vector<int64_t> seen;
  std::mutex mtx;
  std::condition_variable changed;
  int creations = 0;
  std::thread watcher{[&] {
    c.watch_prefix(
      "/rw/", start + 1,
      [&](watch_revision r) {
        std::lock_guard<std::mutex> guard{mtx};
        seen.push_back(r.revision);
        changed.notify_all();
        return seen.size() < 3;
      },
      [&] {
        std::lock_guard<std::mutex> guard{mtx};
        ++creations;
        changed.notify_all();
      });
  }};
  // Waits for the watch's own events, never for time.
  auto wait_for = [&](auto pred) {
    std::unique_lock<std::mutex> guard{mtx};
    return changed.wait_for(guard, 10s, pred);
  };
  REQUIRE(wait_for([&] { return creations == 1; }));
  auto first = c.current_endpoint();
  auto r1 = writer.put("/rw/k", "1");
  REQUIRE(wait_for([&] { return seen.size() == 1; }));
  c.restart_watch();
  REQUIRE(wait_for([&] { return creations == 2; }));
  CHECK(c.current_endpoint() != first);
  auto r2 = writer.put("/rw/k", "2");
  auto r3 = writer.put("/rw/k", "3");
  watcher.join();
  CHECK(seen == std::vector<int64_t>{r1, r2, r3});
}

TEST_CASE("client: a member's progress notifications reach on_progress with "
          "its revision, and deliver no revision") {
  test::etcd_cluster_options o;
  o.members = 1;
  o.extra_flags = {"--experimental-watch-progress-notify-interval=200ms"};
  etcd_cluster cluster{o};
  client c{options_for(cluster)};
  auto start = c.put("/pn/k", "0");
  auto other = c.put("/elsewhere", "moves the revision on");
  std::vector<int64_t> progress;
  int revisions = 0;
  c.watch_prefix(
    "/pn/", start + 1,
    [&](watch_revision) {
      ++revisions;
      return true;
    },
    {},
    [&](int64_t revision) {
      progress.push_back(revision);
      return progress.size() < 2;
    });
  CHECK(revisions == 0);
  REQUIRE(progress.size() == 2);
  CHECK(progress[0] >= other);
  CHECK(progress[1] >= progress[0]);
}
