#pragma once
// A file port whose writes block until the test opens the gate: a disk that
// hangs in the middle of a step, on a real thread.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "fake_file_port.hpp"
#include "support/forwarding_port.hpp"

namespace mcfg::test {

struct gated_port final : forwarding_port {
  std::mutex mtx;
  std::condition_variable cv;
  bool in_write = false;
  bool open = false;

  explicit gated_port(std::shared_ptr<fake_file_port> files)
    : forwarding_port(std::move(files)) {
  }
  std::error_code write_file(const std::string& path, std::string_view bytes,
                             mode_t mode, bool durable) override {
    std::unique_lock<std::mutex> guard{mtx};
    in_write = true;
    cv.notify_all();
    cv.wait(guard, [this] { return open; });
    return forwarding_port::write_file(path, bytes, mode, durable);
  }
  void wait_until_in_write() {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait(guard, [this] { return in_write; });
  }
  void release() {
    std::lock_guard<std::mutex> guard{mtx};
    open = true;
    cv.notify_all();
  }
};

} // namespace mcfg::test
