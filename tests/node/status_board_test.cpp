// The status board (node/status_board.hpp): what writers and the refresher
// publish, read back aged to the reader's clock. No actors.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "memcached_cfg/node/status_board.hpp"

using namespace mcfg;
using namespace std::chrono_literals;

namespace {

writer_status written(const std::string& path, uint64_t version) {
  writer_status st;
  st.path = path;
  st.applied_version = version;
  st.since_last_change = 2s;
  st.since_last_write = 1s;
  return st;
}

} // namespace

TEST_CASE("status board: a file never published has its path and no more, "
          "and a publication is read back aged by the time since") {
  status_board board{{"/a", "/b"}};
  status_board::time_point t0{std::chrono::hours(1)};
  auto first = board.read(t0);
  REQUIRE(first.files.size() == 2);
  CHECK(first.files[1].path == "/b");
  CHECK_FALSE(first.published[1]);
  CHECK(first.files[1].since_last_write.count() < 0);
  CHECK(first.refreshes.empty());

  auto stuck = written("/a", 3);
  stuck.phase = writer_phase::pending;
  stuck.attempt_running_for = 5s;
  stuck.attempt_step = "write";
  board.publish_file(0, stuck, t0);
  auto later = board.read(t0 + 20s);
  CHECK(later.generation == first.generation + 1);
  REQUIRE(later.published[0]);
  auto& a = later.files[0];
  CHECK(a.applied_version == 3);
  CHECK(a.attempt_step == "write");
  CHECK(a.attempt_running_for == 25s);
  CHECK(a.since_last_change == 22s);
  CHECK(a.since_last_write == 21s);
  CHECK(a.failing_for.count() < 0); // "none" stays none
  CHECK_FALSE(later.published[1]);
  // A slot past the end is no file: ignored, nothing bumped.
  board.publish_file(7, written("/x", 1), t0);
  CHECK(board.generation() == later.generation);
}

TEST_CASE("status board: a refresh's retry wait shrinks to zero, never "
          "below, and its check's age grows") {
  status_board board{{"/a"}};
  status_board::time_point t0{std::chrono::hours(1)};
  refresh_status r;
  r.path = "/a";
  r.failures = 2;
  r.next_retry_in = 4s;
  r.verifying_for = 1s;
  board.publish_refresh(r, t0);
  auto soon = board.read(t0 + 3s);
  REQUIRE(soon.refreshes.size() == 1);
  CHECK(soon.refreshes[0].next_retry_in == 1s);
  CHECK(soon.refreshes[0].verifying_for == 4s);
  auto late = board.read(t0 + 10s);
  CHECK(late.refreshes[0].next_retry_in == 0s);
  r.failures = 0;
  r.next_retry_in = caf::timespan{-1};
  board.publish_refresh(r, t0 + 10s);
  auto settled = board.read(t0 + 11s);
  REQUIRE(settled.refreshes.size() == 1); // one entry per path
  CHECK(settled.refreshes[0].failures == 0);
  CHECK(settled.refreshes[0].next_retry_in.count() < 0);
}

TEST_CASE("status board: publishers on many threads and a reader never see "
          "a torn status, and every publication counts") {
  constexpr size_t files = 64;
  constexpr uint64_t rounds = 200;
  std::vector<std::string> paths;
  for (size_t i = 0; i < files; ++i)
    paths.push_back("/f" + std::to_string(i));
  status_board board{paths};
  status_board::time_point t0{std::chrono::hours(1)};
  std::vector<std::thread> publishers;
  for (size_t t = 0; t < 4; ++t)
    publishers.emplace_back([&, t] {
      for (uint64_t v = 1; v <= rounds; ++v)
        for (size_t i = t; i < files; i += 4) {
          auto st = written(paths[i], v);
          st.writes = v; // must always equal applied_version
          board.publish_file(i, std::move(st), t0);
        }
    });
  size_t torn = 0;
  for (int k = 0; k < 200; ++k)
    for (auto& f : board.read(t0).files)
      torn += f.writes != f.applied_version;
  for (auto& p : publishers)
    p.join();
  CHECK(torn == 0);
  auto last = board.read(t0);
  CHECK(last.generation == files * rounds);
  for (auto& f : last.files)
    CHECK(f.applied_version == rounds);
}
