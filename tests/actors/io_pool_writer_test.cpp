// A writer with an I/O pool (actors/io_pool.hpp) under the test_coordinator:
// the pool is the test's own, so its jobs run when, and in the order, the
// test chooses. The actor renders and decides; the jobs only touch files.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "gated_port.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "support/log_capture.hpp"
#include "writer_fixture.hpp"

using namespace mcfg;
using namespace mcfg::test;

namespace {

/// Jobs wait here until the test runs them, one by one, in any order.
struct manual_pool final : io_pool {
  std::vector<std::function<void()>> jobs;

  void submit(std::function<void()> job) override {
    jobs.push_back(std::move(job));
  }

  /// Takes job `i` out of the queue (to run on the test's thread or another).
  std::function<void()> take(size_t i) {
    REQUIRE(i < jobs.size());
    auto job = std::move(jobs[i]);
    jobs.erase(jobs.begin() + static_cast<std::ptrdiff_t>(i));
    return job;
  }

  void run_all() {
    while (!jobs.empty())
      take(0)();
  }
};

struct pool_fixture : writer_fixture {
  std::shared_ptr<manual_pool> pool = std::make_shared<manual_pool>();
  std::shared_ptr<writer_history> history = std::make_shared<writer_history>();

  writer_spec pool_spec() {
    auto s = spec();
    s.pool = pool;
    s.history = history;
    return s;
  }

  /// Spawns the writer and lets it submit its start-up jobs (the leftover
  /// temp file's removal, the first write), without running them.
  void spawn_with_pool() {
    writer = spawn_memcached_cfg(sys, pool_spec());
    exits = watch(sys, writer);
    run();
  }

  /// Spawns the writer, runs its start-up jobs and their outcome.
  void start_with_pool() {
    spawn_with_pool();
    pool->run_all();
    run();
  }
};

} // namespace

TEST_CASE_FIXTURE(pool_fixture,
                  "with a pool the file is written only when the pool runs "
                  "the job, and status says the attempt is queued meanwhile") {
  spawn_with_pool();
  // The leftover removal; the first write waits for it in the file's strand.
  REQUIRE(pool->jobs.size() == 1);
  CHECK(file() == "<missing>");
  CHECK(files->write_calls == 0); // the actor touched no file
  auto held = sync();
  run();
  CHECK_FALSE(held->answered());
  auto st = status();
  CHECK(st.phase == writer_phase::pending);
  CHECK(st.attempt_step == "queued");
  CHECK(st.attempt_running_for >= caf::timespan{0});
  advance(2s);
  CHECK(status().attempt_running_for >= caf::timespan{2s});

  pool->run_all();
  CHECK(file() == "");
  CHECK_FALSE(held->answered()); // the outcome is a message, not yet seen
  run();
  CHECK(held->answered());
  st = status();
  CHECK(st.phase == writer_phase::idle);
  CHECK(st.attempt_running_for < caf::timespan{0});
  CHECK(st.writes == 1);
  CHECK(*refreshes == 1);
  CHECK_FALSE(files->exists(tmp_path));
  CHECK_FALSE(exits.down());
}

TEST_CASE_FIXTURE(pool_fixture,
                  "updates during an attempt coalesce into one next attempt "
                  "rendered from the latest state, held until no change has "
                  "come for coalesce_quiet") {
  start_with_pool();
  REQUIRE(renamed().size() == 1);
  auto v1 = change({{"cfg/a", 1}});
  run();
  REQUIRE(pool->jobs.size() == 1);
  auto held_v1 = sync(v1);
  change("cfg/a", 2);
  auto v3 = change({{"cfg/a", 3}});
  auto held_v3 = sync(v3);
  run();
  CHECK(pool->jobs.size() == 1); // one attempt in flight at a time
  CHECK(status().changes == 3);

  pool->take(0)(); // renders a=1
  run();
  CHECK(held_v1->answered());
  CHECK_FALSE(held_v3->answered());
  // A burst: the next attempt waits until the changes have stopped.
  CHECK(pool->jobs.empty());
  CHECK(status().phase == writer_phase::pending);
  advance(4ms);
  CHECK(pool->jobs.empty());
  advance(1ms); // 5 ms since the last change
  REQUIRE(pool->jobs.size() == 1);
  pool->take(0)();
  run();
  CHECK(held_v3->answered());
  CHECK(renamed() == std::vector<std::string>{"", "cfg/a=1\n", "cfg/a=3\n"});
  CHECK(status().phase == writer_phase::idle);
  CHECK(pool->jobs.empty());
  CHECK(*refreshes == 3);
}

TEST_CASE_FIXTURE(pool_fixture,
                  "a change handled while the attempt fsyncs the directory "
                  "(its content in place) is no burst: the next attempt "
                  "follows the outcome at once") {
  start_with_pool();
  auto once = std::make_shared<int>(1);
  files->during_sync = [this, once] {
    if ((*once)-- > 0) {
      change("cfg/a", 2);
      run(); // the writer handles it while the job is in its fsync
    }
  };
  change("cfg/a", 1);
  run();
  REQUIRE(pool->jobs.size() == 1);
  pool->take(0)();
  run();
  REQUIRE(pool->jobs.size() == 1); // not held: no advance of the clock
  pool->take(0)();
  run();
  CHECK(renamed() == std::vector<std::string>{"", "cfg/a=1\n", "cfg/a=2\n"});
  CHECK(status().phase == writer_phase::idle);
}

TEST_CASE_FIXTURE(pool_fixture,
                  "an attempt that never leaves the queue gives up at the "
                  "deadline naming its step, and its late job writes "
                  "nothing, renames nothing and leaves no temp file") {
  log_capture logs;
  start_with_pool();
  change("cfg/a", 1);
  run();
  REQUIRE(pool->jobs.size() == 1);
  auto stuck = pool->take(0);
  advance(9999ms);
  CHECK_FALSE(exits.down());
  advance(1ms);
  REQUIRE(exits.down());
  auto reason = describe(**exits.reason);
  CHECK(reason
        == "gave up writing /etc/mcfg/auth after 10s of failures: last "
           "attempt /etc/mcfg/auth failed: still in progress after 10s "
           "(step: queued)");
  CHECK(history->give_ups == 1);
  CHECK(pool->jobs.empty()); // the temp file is left to the stuck job

  auto writes = files->write_calls;
  stuck(); // the disk comes back: the abandoned job takes no step
  run();
  CHECK(files->write_calls == writes); // the new secret never hit the disk
  CHECK(renamed().size() == 1); // "cfg/a=1" never renamed into place
  CHECK(file() == "");
  CHECK_FALSE(files->exists(tmp_path));
}

TEST_CASE_FIXTURE(pool_fixture,
                  "a new incarnation's jobs wait for the abandoned one in "
                  "the file's strand, holding no pool thread: the abandoned "
                  "one never renames, the new one's content lands") {
  start_with_pool();
  change("cfg/a", 1);
  run();
  auto old_job = pool->take(0);
  advance(10s); // the old incarnation gives up on it
  REQUIRE(exits.down());
  change("cfg/a", 2); // the truth moves on; a new incarnation starts
  spawn_with_pool();
  // Its leftover removal and first write wait in the strand, not on the
  // pool: with a disk that hangs they would each hold a thread there.
  CHECK(pool->jobs.empty());
  CHECK(status().attempt_step == "queued");
  old_job();
  REQUIRE(pool->jobs.size() == 1); // the removal, then the write
  pool->run_all();
  run();
  CHECK(file() == "cfg/a=2\n");
  CHECK(renamed() == std::vector<std::string>{"", "cfg/a=2\n"});
  CHECK_FALSE(files->exists(tmp_path));
  CHECK(history->give_ups == 0); // in step again
}

TEST_CASE_FIXTURE(pool_fixture,
                  "a write that hangs on its disk: the writer still answers "
                  "status naming the step, gives up at the deadline, and the "
                  "job, once the disk answers, renames nothing") {
  auto gate = std::make_shared<gated_port>(files);
  auto s = pool_spec();
  s.files = gate;
  writer = spawn_memcached_cfg(sys, s);
  exits = watch(sys, writer);
  run();
  pool->take(0)(); // the leftover removal does not write
  std::thread disk{pool->take(0)};
  gate->wait_until_in_write();
  auto st = status(); // answered while the write hangs
  CHECK(st.phase == writer_phase::pending);
  CHECK(st.attempt_step == "write");
  advance(10s);
  REQUIRE(exits.down());
  CHECK(describe(**exits.reason).find("(step: write)") != std::string::npos);
  gate->release();
  disk.join();
  run();
  CHECK(file() == "<missing>");
  CHECK(files->renamed.empty());
  CHECK_FALSE(files->exists(tmp_path));
}

TEST_CASE_FIXTURE(pool_fixture,
                  "a failed job is retried after the retry interval as a new "
                  "job, and no job is submitted before that") {
  start_with_pool();
  files->rename_error = EISDIR;
  change("cfg/a", 1);
  run();
  pool->run_all(); // fails
  run();
  auto st = status();
  CHECK(st.phase == writer_phase::retrying);
  CHECK(st.last_error
        == "rename /etc/mcfg/auth.tmp -> /etc/mcfg/auth failed: Is a "
           "directory");
  CHECK(pool->jobs.empty());
  advance(99ms);
  CHECK(pool->jobs.empty());
  files->rename_error = 0;
  advance(1ms);
  REQUIRE(pool->jobs.size() == 1);
  pool->run_all();
  run();
  CHECK(file() == "cfg/a=1\n");
  CHECK(status().phase == writer_phase::idle);
  CHECK_FALSE(exits.down());
}

TEST_CASE_FIXTURE(pool_fixture,
                  "a writer stopped while its job is queued leaves the temp "
                  "file to the job, which renames nothing and removes it") {
  start_with_pool();
  change("cfg/a", 1);
  run();
  REQUIRE(pool->jobs.size() == 1);
  caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  run();
  REQUIRE(exits.down());
  CHECK(pool->jobs.size() == 1); // no removal of its own: the job's
  pool->run_all();
  CHECK(renamed().size() == 1);
  CHECK(file() == "");
  CHECK_FALSE(files->exists(tmp_path));
}

TEST_CASE_FIXTURE(pool_fixture,
                  "a writer stopped with no job running removes its temp "
                  "file through the pool, after the file's other jobs") {
  start_with_pool();
  files->files[tmp_path] = "secret";
  caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  run();
  REQUIRE(exits.down());
  CHECK(files->exists(tmp_path)); // not on the actor's thread
  REQUIRE(pool->jobs.size() == 1);
  pool->run_all();
  CHECK_FALSE(files->exists(tmp_path));
}

TEST_CASE("the thread pool runs every job submitted before it is destroyed, "
          "and a job that throws ends no thread") {
  std::atomic<int> ran{0};
  {
    auto pool = make_thread_pool(1); // one thread: it must survive the throw
    pool->submit([] { throw std::runtime_error("a bug in a job"); });
    for (int i = 0; i < 100; ++i)
      pool->submit([&ran] { ++ran; });
  } // drains, then joins
  CHECK(ran == 100);
}

TEST_CASE("a strand runs its jobs one at a time in order, past one that "
          "throws, and while one hangs the ones waiting behind it hold no "
          "pool thread") {
  auto pool = make_thread_pool(2);
  auto strand = std::make_shared<io_strand>();
  std::mutex mtx;
  std::condition_variable released_cv;
  bool released = false;
  std::vector<int> order; // guarded by mtx
  io_strand::submit(strand, *pool, [&] {
    std::unique_lock<std::mutex> guard{mtx};
    released_cv.wait(guard, [&] { return released; }); // a hung fsync
    order.push_back(0);
  });
  for (int i = 1; i <= 3; ++i)
    io_strand::submit(strand, *pool, [&, i] {
      std::lock_guard<std::mutex> guard{mtx};
      order.push_back(i);
      if (i == 2)
        throw std::runtime_error("a bug in a job");
    });
  // Another file's job, submitted after them: the pool's second thread is
  // free for it (were 1-3 on the pool, it would be stuck behind them).
  std::promise<void> other;
  pool->submit([&other] { other.set_value(); });
  auto other_ran = other.get_future().wait_for(30s)
                   == std::future_status::ready;
  {
    std::lock_guard<std::mutex> guard{mtx};
    CHECK(order.empty()); // nothing overtook the hung job
    released = true;
  }
  released_cv.notify_all();
  CHECK(other_ran);
  pool.reset(); // drains, then joins
  CHECK(order == std::vector<int>{0, 1, 2, 3});
}

TEST_CASE_FIXTURE(pool_fixture,
                  "a retry submitted at the deadline that does not return "
                  "within a retry interval gives up naming the failure it "
                  "retries") {
  start_with_pool();
  files->rename_error = EISDIR;
  change("cfg/a", 1);
  run();
  pool->run_all(); // the first attempt fails at 0 s
  run();
  for (int i = 1; i < 100; ++i) { // retries at 0.1 s ... 9.9 s, each fails
    advance(100ms);
    REQUIRE(pool->jobs.size() == 1);
    pool->run_all();
    run();
  }
  CHECK_FALSE(exits.down());
  advance(100ms); // 10 s: the retry is submitted, past the deadline
  CHECK_FALSE(exits.down()); // its outcome would decide, if it came
  advance(99ms);
  CHECK_FALSE(exits.down());
  advance(1ms); // it is stuck: one retry interval is all it gets
  REQUIRE(exits.down());
  CHECK(describe(**exits.reason)
        == "gave up writing /etc/mcfg/auth after 10s of failures: last rename "
           "/etc/mcfg/auth.tmp -> /etc/mcfg/auth failed: Is a directory");
  REQUIRE(pool->jobs.size() == 1); // the abandoned retry
  pool->run_all();
  CHECK(renamed().size() == 1);
  CHECK_FALSE(files->exists(tmp_path));
}

TEST_CASE_FIXTURE(pool_fixture,
                  "a writer publishes its status after each message that "
                  "changes it, with its clock's time, and a status request "
                  "publishes nothing, nor does the stale deadline timer "
                  "each attempt leaves") {
  struct publication {
    writer_status st;
    caf::actor_clock::time_point at;
  };
  auto seen = std::make_shared<std::vector<publication>>();
  auto s = pool_spec();
  s.publish = [seen](writer_status st, caf::actor_clock::time_point at) {
    seen->push_back({std::move(st), at});
  };
  writer = spawn_memcached_cfg(sys, s);
  exits = watch(sys, writer);
  run();
  pool->run_all();
  run();
  REQUIRE_FALSE(seen->empty());
  CHECK(seen->back().st.phase == writer_phase::idle);
  CHECK(seen->back().st.path == path);
  auto before = seen->size();
  status();
  CHECK(seen->size() == before);

  advance(3s);
  auto v = change({{"cfg/a", 1}});
  run();
  // The change and its attempt, handed to the pool: pending, queued.
  REQUIRE(seen->size() > before);
  auto& queued = seen->back();
  CHECK(queued.st.phase == writer_phase::pending);
  CHECK(queued.st.attempt_step == "queued");
  CHECK(queued.st.attempt_running_for == caf::timespan{0});
  CHECK(queued.at == sched.clock().current_time);
  auto pending = seen->size();
  advance(2s); // nothing runs the job: nothing is published
  CHECK(seen->size() == pending);
  pool->run_all();
  run();
  REQUIRE(seen->size() == pending + 1);
  CHECK(seen->back().st.phase == writer_phase::idle);
  CHECK(seen->back().st.applied_version == v);
  CHECK(seen->back().st.attempt_running_for.count() < 0);
  CHECK(seen->back().st.writes == 2);
  auto settled = seen->size();
  advance(10s); // the deadline timer of that attempt fires, stale
  CHECK(seen->size() == settled);
  CHECK_FALSE(exits.down());
}
