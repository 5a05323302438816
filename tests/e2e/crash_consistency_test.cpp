// Crash consistency: mcfgd is SIGKILLed at random moments while its source is
// rewritten continuously — renamed into place for half the kills, saved in
// place (truncated and rewritten) for the other half. After every kill the
// auth file must be a complete rendering of one version of the source (alice
// and bob, who always change together, at the same version); after the
// restart that follows it must reach the latest version within a second,
// with no temp file left.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <set>

#include "node_harness.hpp"

using namespace mcfg::test;
namespace fs = std::filesystem;

namespace {

int env_or(const char* name, int fallback) {
  auto value = std::getenv(name);
  return value ? std::atoi(value) : fallback;
}

} // namespace

TEST_CASE("crash consistency: SIGKILL at random moments never leaves a "
          "partial or stale-forever file") {
  temp_dir dir;
  auto node_yaml = dir / "node.yaml";
  auto source = dir / "cluster.yaml";
  auto auth = dir / "run/memcached.auth";
  write_text(node_yaml, "source: cluster.yaml\n"
                        "files:\n"
                        "  - module: memcached_passwords\n"
                        "    path: run/memcached.auth\n");
  const int kills = env_or("MCFG_CRASH_KILLS", 200);
  std::mt19937 rng(20261126);
  auto between = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };

  // Every version of the source ever saved, by the auth file it renders to.
  std::set<std::string> renderings;
  int version = 0;
  bool in_place = false;
  auto next_version = [&] {
    ++version;
    std::map<std::string, std::string> users;
    users["alice"] = "a-v" + std::to_string(version);
    users["bob"] = "b-v" + std::to_string(version);
    auto count = between(0, 6);
    for (int i = 0; i < count; ++i)
      users["user" + std::to_string(i)] = "v" + std::to_string(version) + "-"
                                          + std::to_string(between(0, 1 << 30));
    renderings.insert(auth_file_of(users));
    if (in_place)
      write_text(source, source_of(users));
    else
      write_atomically(source, source_of(users));
    return auth_file_of(users);
  };
  // alice's and bob's versions in an auth file; -1 when absent.
  auto version_of = [](const std::string& content, const std::string& user) {
    auto pos = content.find(user + ":" + user.substr(0, 1) + "-v");
    if (pos == std::string::npos)
      return -1L;
    return std::stol(content.substr(pos + user.size() + 4));
  };

  auto latest = next_version();
  int files_checked = 0;
  int caught_before_first_write = 0;
  std::set<std::string> seen;
  for (int kill = 1; kill <= kills; ++kill) {
    CAPTURE(kill);
    in_place = kill % 2 == 0;
    child_process mcfgd{{MCFGD, "--config", node_yaml, "--log-level", "error"},
                        dir / "mcfgd.out",
                        dir / "mcfgd.err"};
    // The restart: the file reaches the latest source within a second, and
    // the dead incarnation's temp file is gone.
    CHECK(eventually([&] { return read_file(auth) == latest; }, 1s));
    CHECK_FALSE(fs::exists(auth + ".tmp"));
    // Edits keep coming while mcfgd runs, until it is killed mid-stream.
    auto edit_until = std::chrono::steady_clock::now()
                      + std::chrono::milliseconds(between(1, 400));
    while (std::chrono::steady_clock::now() < edit_until) {
      latest = next_version();
      std::this_thread::sleep_for(std::chrono::milliseconds(between(0, 3)));
    }
    mcfgd.signal(SIGKILL);
    REQUIRE(mcfgd.wait_exit(5s));
    // Whatever is in place is whole: exactly some saved version.
    auto content = read_file(auth);
    ++files_checked;
    if (content == "<missing>") {
      ++caught_before_first_write; // only possible before any write
      CHECK(kill == 1);
      continue;
    }
    CHECK(renderings.count(content) == 1);
    CHECK(version_of(content, "alice") == version_of(content, "bob"));
    CHECK(version_of(content, "alice") > 0);
    seen.insert(content);
  }
  MESSAGE("crash consistency: " << kills << " kills, " << files_checked
                                << " files checked, " << version
                                << " source versions saved, " << seen.size()
                                << " distinct versions found in place after "
                                   "a kill");
  CHECK(seen.size() > 1); // the kills did land mid-stream
}
