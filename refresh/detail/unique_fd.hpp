#pragma once
// A descriptor closed on every way out, for refresh/'s sockets and files.
#include <unistd.h>

namespace mcfg::detail {

class unique_fd {
public:
  explicit unique_fd(int fd = -1) : fd_(fd) {
  }

  ~unique_fd() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  int get() const {
    return fd_;
  }

private:
  int fd_;
};

} // namespace mcfg::detail
