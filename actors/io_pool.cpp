#include "memcached_cfg/actors/io_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace mcfg {

namespace {

class thread_pool final : public io_pool {
public:
  explicit thread_pool(size_t threads) {
    threads = std::max<size_t>(threads, 1);
    workers_.reserve(threads);
    for (size_t i = 0; i < threads; ++i)
      workers_.emplace_back([this] { work(); });
  }

  ~thread_pool() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& t : workers_)
      t.join();
  }

  void submit(std::function<void()> job) override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> guard{mtx_};
        ready_.wait(guard, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty())
          return; // stopping, and nothing left to run
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      // No exception may end a pool thread: a job that throws anyway (a
      // bug) loses its outcome, which its writer's deadline then reports.
      try {
        job();
      } catch (...) {
      }
    }
  }

  std::mutex mtx_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

} // namespace

void io_strand::submit(std::shared_ptr<io_strand> self, io_pool& pool,
                       std::function<void()> job) {
  {
    std::lock_guard<std::mutex> guard{self->mtx_};
    if (self->running_) {
      self->waiting_.push_back(std::move(job));
      return;
    }
    self->running_ = true;
  }
  run_next(std::move(self), pool, std::move(job));
}

void io_strand::run_next(std::shared_ptr<io_strand> self, io_pool& pool,
                         std::function<void()> job) {
  pool.submit([self = std::move(self), &pool, job = std::move(job)]() mutable {
    try {
      job();
    } catch (...) { // as the pool does: the strand must go on
    }
    job = nullptr; // its captures go before the next job runs
    std::function<void()> next;
    {
      std::lock_guard<std::mutex> guard{self->mtx_};
      if (self->waiting_.empty()) {
        self->running_ = false;
        return;
      }
      next = std::move(self->waiting_.front());
      self->waiting_.erase(self->waiting_.begin());
    }
    run_next(std::move(self), pool, std::move(next));
  });
}

std::shared_ptr<io_pool> make_thread_pool(size_t threads) {
  return std::make_shared<thread_pool>(threads);
}

} // namespace mcfg
