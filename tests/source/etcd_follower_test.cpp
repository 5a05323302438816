// The etcd backend's threads against a real three-member cluster: the
// follower hands over whole versions (after a full read, per revision, after
// compaction), the registration keeps a node's key under a lease, and both
// say when the source is unreachable.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "memcached_cfg/node/etcd_registration.hpp"
#include "memcached_cfg/source/etcd_follower.hpp"
#include "source/etcd_fixture.hpp"

using namespace mcfg;
using namespace mcfg::etcd;
using namespace std::chrono_literals;
using mcfg::test::etcd_cluster;
using mcfg::test::eventually;
using mcfg::test::options_for;
using mcfg::test::shared_cluster;

namespace {

/// The versions a follower handed over, for the test thread to wait on.
struct version_log {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<users_version> seen;

  etcd_follower::version_handler handler() {
    return [this](users_version v) {
      std::lock_guard<std::mutex> guard{mtx};
      seen.push_back(std::move(v));
      cv.notify_all();
    };
  }

  /// The first version at or after `revision`; fails after `timeout`.
  users_version wait_for(int64_t revision,
                         std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> guard{mtx};
    users_version found;
    bool ok = cv.wait_for(guard, timeout, [&] {
      for (auto& v : seen)
        if (v.revision >= revision) {
          found = v;
          return true;
        }
      return false;
    });
    REQUIRE_MESSAGE(ok, "no version at revision " << revision);
    return found;
  }

  size_t count() {
    std::lock_guard<std::mutex> guard{mtx};
    return seen.size();
  }
};

std::vector<std::string> names(const users_version& v) {
  std::vector<std::string> out;
  for (auto& u : v.users)
    out.push_back(u.name);
  return out;
}

} // namespace

TEST_CASE("follower: a full read, then one whole version per revision") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto r0 = c.put("/f1/users/alice", R"({"password":"a"})");
  c.put("/f1/nodes/n1", "not a user: never handed over");
  auto reach = std::make_shared<etcd_reachability>();
  version_log log;
  etcd_follower follower{options_for(cluster), "/f1/", reach, log.handler()};
  auto first = log.wait_for(r0);
  CHECK(names(first) == std::vector<std::string>{"alice"});
  CHECK(first.users[0].text == R"({"password":"a"})");
  CHECK(first.users[0].where
        == "etcd /f1/users/alice at revision " + std::to_string(r0));
  CHECK(first.digest == read_users(c, "/f1/", first.revision).digest);

  auto r1 = c.txn({}, {put_op("/f1/users/bob", R"({"password":"b"})"),
                       put_op("/f1/users/carol", R"({"password":"c"})")})
              .revision;
  c.put("/f1/nodes/n1", "a node's own key: no version");
  auto r2 = c.delete_prefix("/f1/users/alice");
  auto v1 = log.wait_for(r1);
  CHECK(v1.revision == r1);
  CHECK(names(v1) == std::vector<std::string>{"alice", "bob", "carol"});
  auto v2 = log.wait_for(r2);
  CHECK(v2.revision == r2);
  CHECK(names(v2) == std::vector<std::string>{"bob", "carol"});
  CHECK(v2.digest == read_users(c, "/f1/", r2).digest);
  CHECK(v2.digest != v1.digest);
  // The full read, r1 and r2: the nodes/ puts made no version.
  CHECK(log.count() == 3);
  CHECK(follower.full_reads() == 1);
  CHECK_FALSE(reach->unreachable());
}

TEST_CASE("follower: history compacted while its member was down: it reads "
          "everything again") {
  etcd_cluster cluster;
  client admin{options_for(cluster)};
  admin.put("/f2/users/alice", R"({"password":"a"})");
  auto only_member0 = options_for(cluster);
  only_member0.endpoints = {cluster.endpoint(0)};
  only_member0.retry_for = 20s;
  auto reach = std::make_shared<etcd_reachability>();
  version_log log;
  etcd_follower follower{only_member0, "/f2/", reach, log.handler()};
  log.wait_for(1);
  cluster.kill_member(0);
  admin.put("/f2/users/bob", R"({"password":"b"})");
  auto last = admin.delete_prefix("/f2/users/alice");
  admin.compact(last);
  cluster.restart_member(0);
  // The watch resumes from before the compaction: cancelled, so a full
  // read at a newer revision hands over the state as it is.
  auto v = log.wait_for(last);
  CHECK(names(v) == std::vector<std::string>{"bob"});
  CHECK(follower.full_reads() == 2);
}

TEST_CASE("registration: the node's key under a lease, rewritten when what "
          "it says changes, re-registered when the lease is lost, gone when "
          "stopped") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto reach = std::make_shared<etcd_reachability>();
  std::atomic<int> revision{7};
  auto describe = [&] {
    return nlohmann::json{{"revision", revision.load()}}.dump();
  };
  auto value_of = [&]() -> std::optional<std::string> {
    auto r = c.range_prefix("/reg/nodes/");
    if (r.kvs.empty())
      return std::nullopt;
    return r.kvs.at(0).value;
  };
  {
    etcd_registration reg{options_for(cluster), "/reg/nodes/n1", 2s, reach,
                          describe};
    REQUIRE(eventually([&] { return value_of() == R"({"revision":7})"; }));
    auto lease = c.range_prefix("/reg/nodes/").kvs.at(0).lease;
    CHECK(lease != 0);
    // Kept alive past its TTL: four renewals, a third of the TTL apart.
    REQUIRE(eventually([&] { return reg.renewals() >= 4; }, 10s));
    CHECK(value_of() == R"({"revision":7})");
    CHECK(c.range_prefix("/reg/nodes/").kvs.at(0).lease == lease);
    revision = 8;
    CHECK(eventually([&] { return value_of() == R"({"revision":8})"; }));
    // Lost (as after an outage longer than the TTL): registered anew.
    c.lease_revoke(lease);
    CHECK_FALSE(value_of());
    CHECK(eventually([&] { return value_of() == R"({"revision":8})"; }));
    CHECK(c.range_prefix("/reg/nodes/").kvs.at(0).lease != lease);
    CHECK(reg.writes() == 3);
  }
  CHECK_FALSE(value_of());
  CHECK_FALSE(reach->unreachable());
}

TEST_CASE("registration: a node whose description changes at every look "
          "still renews its lease, and keeps its key past the TTL") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto reach = std::make_shared<etcd_reachability>();
  std::atomic<int> looks{0};
  // A put does not extend a lease: writing every 100 ms must not stand in
  // for the renewals.
  auto describe = [&] { return nlohmann::json{{"look", ++looks}}.dump(); };
  etcd_registration reg{options_for(cluster), "/busy/nodes/n1", 2s, reach,
                        describe};
  REQUIRE(
    eventually([&] { return !c.range_prefix("/busy/nodes/").kvs.empty(); }));
  auto lease = c.range_prefix("/busy/nodes/").kvs.at(0).lease;
  REQUIRE(eventually([&] { return reg.renewals() >= 4; }, 10s));
  auto kvs = c.range_prefix("/busy/nodes/").kvs;
  REQUIRE(kvs.size() == 1);
  CHECK(kvs.at(0).lease == lease);
  CHECK(reg.writes() > 4);
  CHECK_FALSE(reach->unreachable());
}

TEST_CASE("follower and registration: quorum lost is 'unreachable since', "
          "back, changes arrive and it clears") {
  etcd_cluster cluster;
  auto opts = options_for(cluster);
  opts.request_timeout = 700ms;
  opts.retry_for = 1s;
  auto reach = std::make_shared<etcd_reachability>();
  version_log log;
  etcd_follower follower{opts, "/f3/", reach, log.handler()};
  etcd_registration reg{opts, "/f3/nodes/n1", 2s, reach,
                        [] { return std::string{"{}"}; }};
  client admin{options_for(cluster)};
  auto r0 = admin.put("/f3/users/alice", R"({"password":"a"})");
  log.wait_for(r0);
  auto before = std::chrono::system_clock::now();
  cluster.kill_member(1);
  cluster.kill_member(2);
  REQUIRE(eventually([&] { return reach->unreachable().has_value(); }));
  auto down = *reach->unreachable();
  CHECK(down.first >= before - 1s);
  auto text = describe_unreachable(down.first, down.second);
  CHECK(text.rfind("source unreachable since 20", 0) == 0);
  cluster.restart_member(1);
  auto r1 = admin.put("/f3/users/bob", R"({"password":"b"})");
  CHECK(names(log.wait_for(r1)) == std::vector<std::string>{"alice", "bob"});
  CHECK(eventually([&] { return !reach->unreachable(); }));
}

TEST_CASE("follower: an exception from handing a version over ends neither "
          "the thread nor the node, is reported, and a later revision "
          "applies") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto r0 = c.put("/f3/users/alice", R"({"password":"a"})");
  auto reach = std::make_shared<etcd_reachability>();
  version_log log;
  auto pass_on = log.handler();
  // What a JSON library throws for 1e400 (out_of_range, id 406), while a
  // user named `poison` exists; every other version is passed on.
  auto handler = [&](users_version v) {
    for (auto& u : v.users)
      if (u.name == "poison") {
        auto parsed = nlohmann::json::parse("[1e400]");
        static_cast<void>(parsed);
      }
    pass_on(std::move(v));
  };
  etcd_follower follower{options_for(cluster), "/f3/", reach, handler};
  log.wait_for(r0);
  auto bad = c.put("/f3/users/poison", R"({"password":"hunter22"})");
  REQUIRE(eventually([&] { return reach->unreachable().has_value(); }));
  auto why = reach->unreachable()->second;
  CHECK(why == "following /f3/users/ failed: unexpected JSON error 406");
  CHECK(why.find("hunter22") == std::string::npos);
  // It reads everything again after its backoff, and throws again.
  REQUIRE(eventually([&] { return follower.full_reads() >= 3; }));
  auto good = c.delete_prefix("/f3/users/poison");
  auto v = log.wait_for(good);
  CHECK(names(v) == std::vector<std::string>{"alice"});
  CHECK(eventually([&] { return !reach->unreachable(); }));
  // No version with the poisoned user was ever passed on.
  std::lock_guard<std::mutex> guard{log.mtx};
  for (auto& seen : log.seen) {
    CHECK(seen.revision != bad);
    CHECK(names(seen) == std::vector<std::string>{"alice"});
  }
}

TEST_CASE("registration: an exception from describe ends neither the thread "
          "nor the node, is reported, and the key is written once it "
          "answers") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto reach = std::make_shared<etcd_reachability>();
  std::atomic<bool> broken{true};
  auto describe = [&]() -> std::string {
    if (broken)
      throw std::runtime_error("hunter22");
    return R"({"ok":true})";
  };
  etcd_registration reg{options_for(cluster), "/thr/nodes/n1", 2s, reach,
                        describe};
  REQUIRE(eventually([&] { return reach->unreachable().has_value(); }));
  CHECK(reach->unreachable()->second
        == "registering /thr/nodes/n1 failed: unexpected exception "
           "std::runtime_error");
  CHECK(reach->unreachable()->second.find("hunter22") == std::string::npos);
  CHECK(reg.writes() == 0);
  CHECK(c.range_prefix("/thr/nodes/").kvs.empty());
  broken = false;
  REQUIRE(eventually([&] { return reg.writes() == 1; }));
  auto kvs = c.range_prefix("/thr/nodes/").kvs;
  REQUIRE(kvs.size() == 1);
  CHECK(kvs[0].value == R"({"ok":true})");
  CHECK(eventually([&] { return !reach->unreachable(); }));
}

TEST_CASE("follower: on a quiet prefix linearizable probes prove it fresh "
          "at etcd's newest revision, and no doubt is raised") {
  auto& cluster = shared_cluster();
  client c{options_for(cluster)};
  auto r0 = c.put("/fq/users/alice", R"({"password":"a"})");
  auto opts = options_for(cluster);
  opts.stale_after = 400ms; // probes every 100 ms
  auto reach = std::make_shared<etcd_reachability>();
  version_log log;
  etcd_follower follower{opts, "/fq/", reach, log.handler()};
  log.wait_for(r0);
  // Revisions elsewhere: the watch of users/ delivers none of them, so
  // only a probe can vouch for them.
  auto r1 = c.put("/fq/nodes/n1", "not a user");
  CHECK(eventually([&] { return reach->freshness().revision() >= r1; }, 5s));
  // Quiet for several bounds: still proven, never in doubt.
  auto later = c.put("/fq/nodes/n1", "still not a user");
  CHECK(eventually([&] { return reach->freshness().revision() >= later; }, 5s));
  CHECK_FALSE(reach->freshness().doubted());
  CHECK(log.count() == 1);
  CHECK(follower.full_reads() == 1);
}
