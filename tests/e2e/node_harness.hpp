#pragma once
// Running mcfgd and mcfgctl as users do, for the end-to-end, crash and soak
// tests. Time is real here; every wait is bounded.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

namespace mcfg::test {

using namespace std::chrono_literals;

struct run_result {
  int exit_code = -2;
  std::string out;
  std::string err;
};

/// Runs a command to its end (bounded), capturing stdout and stderr.
inline run_result run(const temp_dir& dir, std::vector<std::string> args,
                      std::chrono::milliseconds timeout = 60s) {
  auto out = dir / "cmd.out";
  auto err = dir / "cmd.err";
  child_process proc{std::move(args), out, err};
  run_result result;
  result.exit_code = proc.wait_exit_code(timeout).value_or(-3);
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

/// Replaces `path` as an editor that saves atomically does.
inline void write_atomically(const std::string& path, const std::string& text) {
  write_text(path + ".editing", text);
  std::filesystem::rename(path + ".editing", path);
}

/// A non-empty directory where a file should be: renaming onto it fails
/// with EISDIR for as long as it stays.
inline void block_with_directory(const std::string& path) {
  // A running writer may rename a file into place between the remove and the
  // mkdir: try again until the directory wins.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (std::filesystem::create_directory(path, ec) || !ec)
      break;
  }
  REQUIRE(std::filesystem::is_directory(path));
  write_text(path + "/keep", "x");
}

/// Resident memory of `pid` in KiB (VmRSS), 0 when unknown.
inline long rss_kib(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return 0;
}

/// Open file descriptors of `pid`.
inline long open_fds(pid_t pid) {
  long n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(
         "/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

/// The memcached auth file a list of users renders to: sorted lines.
inline std::string auth_file_of(std::map<std::string, std::string> users) {
  std::string out;
  for (auto& [user, pw] : users)
    out += user + ":" + pw + "\n";
  return out;
}

/// The source YAML for a list of users.
inline std::string source_of(const std::map<std::string, std::string>& users) {
  std::string out = "users:\n";
  for (auto& [user, pw] : users)
    out += "  " + user + ": {password: " + pw + "}\n";
  if (users.empty())
    out = "users: {}\n";
  return out;
}

} // namespace mcfg::test
