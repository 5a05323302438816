#pragma once
// A file port that hands every operation to another port. The ports of the
// tests and the bench that change one step (a write that hangs on a chosen
// file, say) derive from it and override only that step, calling
// forwarding_port::<step> to go on, instead of forwarding the other steps
// by hand each time.
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "memcached_cfg/actors/file_port.hpp"

namespace mcfg::test {

class forwarding_port : public file_port {
public:
  explicit forwarding_port(std::shared_ptr<file_port> inner)
    : inner_(std::move(inner)) {
  }

  std::error_code make_directories(const std::string& dir) override {
    return inner_->make_directories(dir);
  }

  std::error_code write_file(const std::string& path, std::string_view bytes,
                             mode_t mode, bool durable) override {
    return inner_->write_file(path, bytes, mode, durable);
  }

  std::error_code rename(const std::string& from,
                         const std::string& to) override {
    return inner_->rename(from, to);
  }

  std::error_code sync_directory(const std::string& dir) override {
    return inner_->sync_directory(dir);
  }

  std::error_code remove(const std::string& path) override {
    return inner_->remove(path);
  }

  bool exists(const std::string& path) override {
    return inner_->exists(path);
  }

private:
  std::shared_ptr<file_port> inner_;
};

} // namespace mcfg::test
