// The refresher under the test_coordinator: coalescing, retries, sync.
#include <doctest/doctest.h>

#include <algorithm>

#include <caf/send.hpp>

#include "node/refresher.hpp"
#include "support/actor_probes.hpp"
#include "support/coordinator_fixture.hpp"
#include "support/log_capture.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

struct refresher_fixture : coordinator_fixture {
  std::shared_ptr<std::vector<std::string>> calls
    = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<std::string> failure = std::make_shared<std::string>();
  refresher_actor refresher;
  log_capture logs;

  refresher_fixture() {
    refresher_spec spec;
    for (auto path : {"/a", "/b"})
      spec.actions[path] = [calls = calls, failure = failure, path] {
        calls->push_back(path);
        return *failure;
      };
    refresher = spawn_refresher(sys, std::move(spec), false);
    run();
  }

  void request(const std::string& path) {
    caf::anon_send(refresher, refresh_atom::value, path);
  }

  size_t count(const std::string& path) const {
    return std::count(calls->begin(), calls->end(), path);
  }
};

} // namespace

TEST_CASE_FIXTURE(refresher_fixture,
                  "refresh requests are coalesced per file") {
  request("/a");
  request("/a");
  request("/b");
  request("/a");
  request("/unknown"); // a file without a refresh action
  run();
  CHECK(count("/a") == 1);
  CHECK(count("/b") == 1);
  CHECK(calls->size() == 2);
  CHECK_FALSE(sched.has_pending_timeout());
}

TEST_CASE_FIXTURE(refresher_fixture,
                  "a failed refresh is retried every second until it goes "
                  "through, and a sync waits for it") {
  *failure = "pidfile /run/memcached.pid: No such file or directory";
  request("/a");
  run();
  CHECK(count("/a") == 1);
  auto held = ask<caf::ok_atom>(sys, refresher, sync_atom::value);
  run();
  CHECK_FALSE(held->answered());
  advance(999ms);
  CHECK(count("/a") == 1);
  advance(1ms);
  CHECK(count("/a") == 2);
  CHECK(logs.count("refresh of /a failed") == 1); // not one line per retry
  auto st = ask<std::vector<refresh_status>>(sys, refresher, status_atom::value);
  run();
  REQUIRE(st->value);
  REQUIRE(st->value->size() == 1);
  CHECK(st->value->front().failures == 2);
  CHECK(st->value->front().pending);
  failure->clear();
  advance(1s);
  CHECK(count("/a") == 3);
  CHECK(held->value.has_value());
  CHECK(count("/b") == 0);
  advance(5s);
  CHECK(count("/a") == 3); // no more retries once it went through
  CHECK(logs.contains("refreshed /a after 2 failed attempts"));
}
