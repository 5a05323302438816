#pragma once
// Where writers run their file I/O (ARCHITECTURE.md §3): a bounded pool of
// threads, so that thousands of writers share a few threads and a writer
// actor never blocks in write, fsync or rename. A writer given a pool
// renders on its actor, hands the bytes and the port's steps to the pool,
// and gets the outcome back as a message; without one it runs them inline.
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace mcfg {

class io_pool {
public:
  virtual ~io_pool() = default;
  /// Runs `job` later on one of the pool's threads; never blocks. A job
  /// lets no exception out (the writer's jobs catch their own).
  virtual void submit(std::function<void()> job) = 0;
};

/// Jobs that must never overlap (one file's), run on a pool one at a time in
/// the order submitted. A job waiting for the one before it holds no pool
/// thread: a file whose fsync hangs holds one thread, not one more for each
/// job queued behind it (a restarted writer's removal and first attempt).
class io_strand {
public:
  io_strand() = default;
  io_strand(const io_strand&) = delete;
  io_strand& operator=(const io_strand&) = delete;

  /// Runs `job` on `pool` once every job submitted before it has ended.
  /// `self` is this strand, shared (e.g. aliasing its owner) so that it
  /// outlives its jobs; `pool` must outlive them too (it drains on
  /// destruction). Never blocks.
  static void submit(std::shared_ptr<io_strand> self, io_pool& pool,
                     std::function<void()> job);

private:
  static void run_next(std::shared_ptr<io_strand> self, io_pool& pool,
                       std::function<void()> job);

  std::mutex mtx_;
  /// Waiting for the running job, oldest first (a vector: usually empty,
  /// and then it costs no allocation, unlike a deque).
  std::vector<std::function<void()>> waiting_;
  bool running_ = false;
};

/// A pool of `threads` threads (at least 1) taking jobs in submit order.
/// Destroying it runs the jobs still queued, then joins its threads.
std::shared_ptr<io_pool> make_thread_pool(size_t threads);

} // namespace mcfg
