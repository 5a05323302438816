#pragma once
// The file operations a writer makes, behind a small port: the real POSIX one
// for production and temp-dir tests, a scripted fake for tests under the
// test_coordinator. Every operation reports the OS error it met.
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <sys/types.h>

namespace mcfg {

class file_port {
public:
  virtual ~file_port() = default;

  /// Creates `dir` and missing parents (mode 0700); an existing one is fine.
  virtual std::error_code make_directories(const std::string& dir) = 0;

  /// Removes whatever is at `path` (a file or a symlink itself, never what
  /// it points to), creates it with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC,
  /// sets `mode` whatever the umask, writes every byte, fsyncs when
  /// `durable`, and closes. The bytes only go into a file this call
  /// created: something appearing at `path` in between fails it (EEXIST).
  virtual std::error_code write_file(const std::string& path,
                                     std::string_view bytes, mode_t mode,
                                     bool durable)
    = 0;

  /// Atomically replaces `to` with `from`.
  virtual std::error_code rename(const std::string& from, const std::string& to)
    = 0;

  /// fsyncs the directory `dir`, making a rename in it durable.
  virtual std::error_code sync_directory(const std::string& dir) = 0;

  /// Removes `path`; a missing file is not an error.
  virtual std::error_code remove(const std::string& path) = 0;

  /// True when something (file, directory, link) exists at `path`.
  virtual bool exists(const std::string& path) = 0;
};

/// The real thing: POSIX system calls.
std::shared_ptr<file_port> make_posix_file_port();

} // namespace mcfg
