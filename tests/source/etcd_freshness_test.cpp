// The follower's freshness rule (etcd_freshness) as a pure function of the
// times passed in: no clock, no etcd.
#include <doctest/doctest.h>

#include <chrono>

#include "memcached_cfg/source/etcd_follower.hpp"
#include "memcached_cfg/source/etcd_source.hpp"
#include "support/log_capture.hpp"

using namespace mcfg;
using namespace mcfg::etcd;
using namespace std::chrono_literals;
using mcfg::test::log_capture;

namespace {

using steady = etcd_freshness::steady;
using wall = etcd_freshness::wall;

/// 2026-11-28T08:00:00Z.
wall::time_point noon_ish() {
  return wall::from_time_t(1795852800);
}

} // namespace

TEST_CASE("etcd_freshness: proven at start, in doubt only once more than "
          "the bound has passed without proof") {
  log_capture logs;
  steady::time_point t0{};
  etcd_freshness f{t0, noon_ish()};
  CHECK_FALSE(f.check(t0 + 2s, 2s));
  CHECK_FALSE(f.doubted());
  CHECK(logs.lines.empty());
  CHECK(f.check(t0 + 2s + 1ms, 2s));
  auto d = f.doubted();
  REQUIRE(d);
  CHECK(d->since == noon_ish());
  CHECK(d->why.find("for more than 2000ms") != std::string::npos);
  CHECK(logs.count("source not proven fresh since 2026-11-28T08:00:00Z") == 1);
  // Still in doubt later: logged once only.
  CHECK(f.check(t0 + 5s, 2s));
  CHECK(logs.count("not proven fresh") == 1);
}

TEST_CASE("etcd_freshness: a proof ends the doubt and moves since, an older "
          "proof moves neither the revision nor the time back") {
  log_capture logs;
  steady::time_point t0{};
  etcd_freshness f{t0, noon_ish()};
  f.unproven("etcd at http://127.0.0.11:2379: etcdserver: no leader");
  REQUIRE(f.check(t0 + 3s, 2s));
  CHECK(f.doubted()->why
        == "etcd at http://127.0.0.11:2379: etcdserver: no leader");
  f.proven(42, t0 + 4s, noon_ish() + 4s);
  CHECK_FALSE(f.doubted()); // until the next check, as before
  CHECK(logs.count("source proven fresh again at revision 42") == 1);
  CHECK_FALSE(f.check(t0 + 5s, 2s));
  CHECK(f.revision() == 42);
  f.proven(40, t0 + 1s, noon_ish() + 1s);
  CHECK(f.revision() == 42);
  CHECK(f.proven_at() == t0 + 4s);
  CHECK_FALSE(f.check(t0 + 6s, 2s));
  CHECK(f.check(t0 + 6s + 1ms, 2s));
  CHECK(f.doubted()->since == noon_ish() + 4s);
}

TEST_CASE("etcd_freshness: known stale is doubt at once with its reason, "
          "until the next proof") {
  steady::time_point t0{};
  etcd_freshness f{t0, noon_ish()};
  f.unproven("a change in flight");
  CHECK_FALSE(f.check(t0 + 100ms, 2s));
  f.unproven("the watch lags", true);
  CHECK(f.check(t0 + 200ms, 2s));
  CHECK(f.doubted()->why == "the watch lags");
  CHECK(f.doubted()->since == noon_ish());
  f.proven(7, t0 + 300ms, noon_ish());
  CHECK_FALSE(f.check(t0 + 400ms, 2s));
  CHECK_FALSE(f.doubted());
}

TEST_CASE("describe_unproven: the UTC time of the last proof and why") {
  CHECK(describe_unproven(noon_ish(), "why")
        == "source not proven fresh since 2026-11-28T08:00:00Z: why");
}

TEST_CASE("etcd_follower: probes a quarter of the bound apart, within "
          "50 ms and 2.5 s") {
  CHECK(etcd_follower::probe_interval(2s) == 500ms);
  CHECK(etcd_follower::probe_interval(10s) == 2500ms);
  CHECK(etcd_follower::probe_interval(60s) == 2500ms);
  CHECK(etcd_follower::probe_interval(100ms) == 50ms);
}

TEST_CASE("etcd_reachability: the registration's success leaves the "
          "follower's doubt alone") {
  etcd_reachability reach;
  reach.freshness().unproven("the watch lags", true);
  REQUIRE(reach.freshness().check(steady::now(), 10s));
  reach.failed("registration could not renew");
  reach.succeeded();
  CHECK_FALSE(reach.unreachable());
  REQUIRE(reach.freshness().doubted());
  CHECK(reach.freshness().doubted()->why == "the watch lags");
}
