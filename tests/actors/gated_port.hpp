#pragma once
// A file port whose writes block until the test opens the gate: a disk that
// hangs in the middle of a step, on a real thread.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "fake_file_port.hpp"

namespace mcfg::test {

struct gated_port final : file_port {
  std::shared_ptr<fake_file_port> inner;
  std::mutex mtx;
  std::condition_variable cv;
  bool in_write = false;
  bool open = false;

  explicit gated_port(std::shared_ptr<fake_file_port> files)
    : inner(std::move(files)) {
  }
  std::error_code make_directories(const std::string& dir) override {
    return inner->make_directories(dir);
  }
  std::error_code write_file(const std::string& path, std::string_view bytes,
                             mode_t mode, bool durable) override {
    std::unique_lock<std::mutex> guard{mtx};
    in_write = true;
    cv.notify_all();
    cv.wait(guard, [this] { return open; });
    return inner->write_file(path, bytes, mode, durable);
  }
  std::error_code rename(const std::string& from,
                         const std::string& to) override {
    return inner->rename(from, to);
  }
  std::error_code sync_directory(const std::string& dir) override {
    return inner->sync_directory(dir);
  }
  std::error_code remove(const std::string& path) override {
    return inner->remove(path);
  }
  bool exists(const std::string& path) override {
    return inner->exists(path);
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
