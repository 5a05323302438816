// The file watcher on real files in a temp dir, with its real inotify thread:
// which events it reports, as what, and what quiet_since says. Waits are for
// the watcher's own reports (bounded), not for time to pass.
#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "memcached_cfg/source/file_watcher.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

struct report {
  file_event_kind kind;
  uint64_t seen;
};

struct watched {
  temp_dir dir;
  std::string source = dir / "cluster.yaml";
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<report> reports;
  /// What on_stop said, and how often it was called.
  std::string stopped_why;
  int stops = 0;
  std::unique_ptr<file_watcher> watcher;

  explicit watched(file_watcher::options opts = {},
                   std::function<void()> on_event = {}) {
    write_text(source, "users: {}\n");
    if (!opts.on_stop)
      opts.on_stop = [this](const std::string& why) {
        std::lock_guard<std::mutex> guard{mtx};
        stopped_why = why;
        ++stops;
        cv.notify_all();
      };
    std::string why_not;
    watcher = file_watcher::start(
      source,
      [this, on_event](file_event_kind kind, uint64_t seen) {
        {
          std::lock_guard<std::mutex> guard{mtx};
          reports.push_back({kind, seen});
          cv.notify_all();
        }
        if (on_event)
          on_event();
      },
      why_not, std::move(opts));
    REQUIRE_MESSAGE(watcher != nullptr, why_not);
  }

  /// Why the thread stopped, once it did (bounded wait); empty if not.
  std::string await_stop() {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait_for(guard, 5s, [&] { return stops > 0; });
    return stopped_why;
  }

  /// The reports once at least `n` arrived (bounded wait).
  std::vector<report> await(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait_for(guard, 5s, [&] { return reports.size() >= n; });
    return reports;
  }

  /// The last report once it says `kind` (bounded wait); {} if none does.
  std::optional<report> await_last(file_event_kind kind) {
    std::unique_lock<std::mutex> guard{mtx};
    if (!cv.wait_for(guard, 5s, [&] {
          return !reports.empty() && reports.back().kind == kind;
        }))
      return std::nullopt;
    return reports.back();
  }
};

} // namespace

TEST_CASE("file_watcher: a rename into place is reported as complete, and "
          "other files in the directory are not reported") {
  watched w;
  write_text(w.dir / "other.txt", "x"); // create, modify, close
  write_text(w.dir / "cluster.yaml.new", "users: {}\n");
  REQUIRE(::rename((w.dir / "cluster.yaml.new").c_str(), w.source.c_str())
          == 0);
  auto r = w.await(1);
  REQUIRE(r.size() >= 1);
  CHECK(r.back().kind == file_event_kind::complete);
  CHECK(r.back().seen == 1); // only the rename was about the source
  CHECK(w.watcher->quiet_since(r.back().seen));
}

TEST_CASE("file_watcher: an in-place write is modified until its writer "
          "closes the file, and quiet_since is false from the write on") {
  watched w;
  int fd = ::open(w.source.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  REQUIRE(fd >= 0);
  // The truncation is reported (or queued) before open returns.
  CHECK_FALSE(w.watcher->quiet_since(0));
  auto r = w.await(1);
  REQUIRE(r.size() >= 1);
  CHECK(r.back().kind == file_event_kind::modified);
  auto seen = r.back().seen;
  REQUIRE(::write(fd, "users:\n", 7) == 7);
  CHECK_FALSE(w.watcher->quiet_since(seen));
  ::close(fd);
  // However the kernel's events fell into batches, the last says closed.
  auto closed = w.await_last(file_event_kind::complete);
  REQUIRE(closed.has_value());
  CHECK(closed->seen > seen);
  CHECK(w.watcher->quiet_since(closed->seen));
}

TEST_CASE("file_watcher: a deleted and re-created source is reported") {
  watched w;
  REQUIRE(std::remove(w.source.c_str()) == 0);
  auto r = w.await(1);
  REQUIRE(r.size() >= 1);
  CHECK(r.back().kind == file_event_kind::modified);
  write_text(w.source, "users: {}\n");
  auto closed = w.await_last(file_event_kind::complete);
  REQUIRE(closed.has_value());
  CHECK(closed->seen > r.back().seen);
}

TEST_CASE("file_watcher: a failing poll ends the thread with a report of "
          "why, once, after which quiet_since is false and nothing more is "
          "reported") {
  auto fail = std::make_shared<std::atomic<bool>>(false);
  file_watcher::options opts;
  opts.poll = [fail](::pollfd* fds, unsigned long n, int timeout) {
    if (fail->load()) {
      errno = EFAULT;
      return -1;
    }
    return ::poll(fds, n, timeout);
  };
  watched w{std::move(opts)};
  // It watches until then: an edit is reported.
  write_text(w.source, "users: {}\n");
  auto r = w.await(1);
  REQUIRE(r.size() >= 1);
  // The next poll fails, at once or once an edit wakes the one under way.
  fail->store(true);
  write_text(w.source, "users: {}\n");
  CHECK(w.await_stop() == "poll on inotify failed: Bad address");
  r = w.await(0);
  CHECK_FALSE(w.watcher->quiet_since(r.back().seen));
  auto reported = r.size();
  write_text(w.source, "users: {}\n");
  w.watcher.reset(); // joins the ended thread at once
  std::lock_guard<std::mutex> guard{w.mtx};
  CHECK(w.reports.size() == reported);
  CHECK(w.stops == 1);
}

TEST_CASE("file_watcher: an exception from the event callback ends the "
          "thread with a report of why, not a terminate") {
  watched w{{}, [] { throw std::runtime_error("callback broke"); }};
  write_text(w.source, "users: {}\n");
  CHECK(w.await_stop() == "the watch failed: callback broke");
  CHECK_FALSE(w.watcher->quiet_since(w.await(1).back().seen));
  w.watcher.reset();
  CHECK(w.stops == 1);
}

TEST_CASE("file_watcher: a watcher destroyed while watching does not report "
          "a stop") {
  watched w;
  write_text(w.source, "users: {}\n");
  REQUIRE(w.await(1).size() >= 1);
  w.watcher.reset();
  CHECK(w.stops == 0);
}
