#pragma once
// An in-memory file system with scripted faults, for writers run under the
// test_coordinator. It records every rename into place, so tests can check
// that content never goes back in time.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "memcached_cfg/actors/file_port.hpp"

namespace mcfg::test {

class fake_file_port final : public file_port {
public:
  std::map<std::string, std::string> files;
  std::map<std::string, mode_t> modes;
  /// Contents renamed into place, in order, per target path.
  std::map<std::string, std::vector<std::string>> renamed;

  /// errno each operation fails with; 0 lets it succeed.
  int mkdir_error = 0;
  int write_error = 0;
  int rename_error = 0;
  int sync_error = 0;
  /// errno a rename onto one of these targets fails with (one file's fault).
  std::map<std::string, int> rename_errors_for;

  /// Called in every write_file, after the temp file holds its bytes: what
  /// happens while a write runs (the test sends changes from there).
  std::function<void()> during_write;
  /// The same for sync_directory: past the rename, the new content in place.
  std::function<void()> during_sync;

  size_t write_calls = 0;
  size_t rename_calls = 0;
  size_t sync_calls = 0;
  size_t remove_calls = 0;

  std::error_code make_directories(const std::string&) override {
    return fail_with(mkdir_error);
  }

  std::error_code write_file(const std::string& path, std::string_view bytes,
                             mode_t mode, bool) override {
    ++write_calls;
    if (write_error != 0)
      return fail_with(write_error);
    files[path] = std::string{bytes};
    modes[path] = mode;
    if (during_write)
      during_write();
    return {};
  }

  std::error_code rename(const std::string& from,
                         const std::string& to) override {
    ++rename_calls;
    if (rename_error != 0)
      return fail_with(rename_error);
    if (auto err = rename_errors_for.find(to); err != rename_errors_for.end())
      return fail_with(err->second);
    auto i = files.find(from);
    if (i == files.end())
      return fail_with(ENOENT);
    files[to] = i->second;
    modes[to] = modes[from];
    renamed[to].push_back(i->second);
    files.erase(i);
    return {};
  }

  std::error_code sync_directory(const std::string&) override {
    ++sync_calls;
    if (during_sync)
      during_sync();
    return fail_with(sync_error);
  }

  std::error_code remove(const std::string& path) override {
    ++remove_calls;
    files.erase(path);
    return {};
  }

  bool exists(const std::string& path) override {
    return files.count(path) > 0;
  }

private:
  static std::error_code fail_with(int err) {
    return {err, std::generic_category()};
  }
};

} // namespace mcfg::test
