#include "memcached_cfg/actors/file_port.hpp"

#include <cerrno>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mcfg {

namespace {

std::error_code last_os_error() {
  return {errno, std::generic_category()};
}

/// Closes `fd`, keeping the first error seen.
std::error_code close_keeping(int fd, std::error_code first) {
  if (::close(fd) != 0 && !first)
    return last_os_error();
  return first;
}

class posix_file_port final : public file_port {
public:
  std::error_code make_directories(const std::string& dir) override {
    if (dir.empty())
      return {};
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0) // the common case: it is there
      return S_ISDIR(st.st_mode)
               ? std::error_code{}
               : std::error_code{ENOTDIR, std::generic_category()};
    // Walk the path from its root, creating what is missing; new folders are
    // private (0700) because they may hold secrets.
    for (size_t pos = 1; pos != std::string::npos;) {
      pos = dir.find('/', pos);
      auto prefix = dir.substr(0, pos);
      if (pos != std::string::npos)
        ++pos;
      if (prefix.empty())
        continue;
      if (::mkdir(prefix.c_str(), 0700) == 0)
        continue;
      if (errno != EEXIST)
        return last_os_error();
    }
    if (::stat(dir.c_str(), &st) != 0)
      return last_os_error();
    if (!S_ISDIR(st.st_mode))
      return {ENOTDIR, std::generic_category()};
    return {};
  }

  std::error_code write_file(const std::string& path, std::string_view bytes,
                             mode_t mode, bool durable) override {
    // Whatever is at the temp path is stale (a dead incarnation's file, or
    // one planted there, possibly another user's or a symlink): unlink
    // removes the name, never what a symlink points to. The file is then
    // created anew, exclusively: if anything appears at the path meanwhile
    // the open fails (EEXIST) and nothing is written, so the bytes only
    // ever go into a file this process created, owned by its user.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return last_os_error();
    int fd = ::open(path.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
      return last_os_error();
    // open() applies the umask; fchmod makes the mode exactly what was
    // asked for, on the descriptor.
    if (::fchmod(fd, mode) != 0)
      return close_keeping(fd, last_os_error());
    const char* data = bytes.data();
    size_t left = bytes.size();
    while (left > 0) {
      auto n = ::write(fd, data, left);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return close_keeping(fd, last_os_error());
      }
      data += n;
      left -= static_cast<size_t>(n);
    }
    if (durable && ::fsync(fd) != 0)
      return close_keeping(fd, last_os_error());
    return close_keeping(fd, {});
  }

  std::error_code rename(const std::string& from,
                         const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return last_os_error();
    return {};
  }

  std::error_code sync_directory(const std::string& dir) override {
    int fd = ::open(dir.empty() ? "." : dir.c_str(),
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
      return last_os_error();
    std::error_code err;
    if (::fsync(fd) != 0)
      err = last_os_error();
    return close_keeping(fd, err);
  }

  std::error_code remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return last_os_error();
    return {};
  }

  bool exists(const std::string& path) override {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }
};

} // namespace

std::shared_ptr<file_port> make_posix_file_port() {
  return std::make_shared<posix_file_port>();
}

} // namespace mcfg
