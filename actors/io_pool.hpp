#pragma once
// Where writers run their file I/O (ARCHITECTURE.md §3): a bounded pool of
// threads, so that thousands of writers share a few threads and a writer
// actor never blocks in write, fsync or rename. A writer given a pool
// renders on its actor, hands the bytes and the port's steps to the pool,
// and gets the outcome back as a message; without one it runs them inline.
#include <cstddef>
#include <functional>
#include <memory>

namespace mcfg {

class io_pool {
public:
  virtual ~io_pool() = default;
  /// Runs `job` later on one of the pool's threads; never blocks. A job
  /// lets no exception out (the writer's jobs catch their own).
  virtual void submit(std::function<void()> job) = 0;
};

/// A pool of `threads` threads (at least 1) taking jobs in submit order.
/// Destroying it runs the jobs still queued, then joins its threads.
std::shared_ptr<io_pool> make_thread_pool(size_t threads);

} // namespace mcfg
