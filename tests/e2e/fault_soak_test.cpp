// Fault soak: source edits at >= 50/s while rename faults come and go (the
// auth file's path turned into a directory for spells of random length, some
// longer than the writer's deadline). At the end the file equals the latest
// source, mcfgd still runs, the writer's restarts match the spells that
// outlasted the deadline without an edit, and open descriptors and resident
// memory stayed within bounds. MCFG_SOAK_SECONDS sets the length (default 60).
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <random>

#include "node_harness.hpp"

using namespace mcfg::test;
namespace fs = std::filesystem;

namespace {

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("fault soak: edits at 50/s through rename faults, short and long") {
  auto seconds = std::getenv("MCFG_SOAK_SECONDS")
                   ? std::atoi(std::getenv("MCFG_SOAK_SECONDS"))
                   : 60;
  temp_dir dir;
  auto node_yaml = dir / "node.yaml";
  auto source = dir / "cluster.yaml";
  auto auth = dir / "run/memcached.auth";
  // A 3 s deadline keeps long spells short enough to have several per minute.
  write_text(node_yaml, "source: cluster.yaml\n"
                        "retry: {interval: 100ms, deadline: 3s}\n"
                        "supervisor: {intensity: 3, period: 10s}\n"
                        "files:\n"
                        "  - module: memcached_passwords\n"
                        "    path: run/memcached.auth\n");
  std::mt19937 rng(4242);
  auto between = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  int version = 0;
  std::string latest;
  auto edit = [&] {
    ++version;
    std::map<std::string, std::string> users{
      {"alice", "a" + std::to_string(version)},
      {"bob", "b" + std::to_string(version % 7)}};
    write_atomically(source, source_of(users));
    latest = auth_file_of(users);
  };
  edit();
  auto err_log = dir / "mcfgd.err";
  child_process mcfgd{
    {MCFGD, "--config", node_yaml}, dir / "mcfgd.out", err_log};
  REQUIRE(eventually([&] { return read_file(auth) == latest; }));
  REQUIRE(eventually([&] { return fs::exists(dir / "mcfgd.sock"); }));

  using clock = std::chrono::steady_clock;
  auto edit_for = [&](std::chrono::milliseconds d, bool editing) {
    auto until = clock::now() + d;
    while (clock::now() < until) {
      if (editing)
        edit();
      std::this_thread::sleep_for(5ms); // well over 50 edits per second
    }
  };
  // Warm up, then take the baseline.
  edit_for(2s, true);
  auto fds_before = open_fds(mcfgd.pid());
  auto rss_before = rss_kib(mcfgd.pid());

  int edits_at_start = version;
  int short_spells = 0, long_spells_editing = 0, long_spells_quiet = 0;
  auto end = clock::now() + std::chrono::seconds(seconds);
  while (clock::now() < end) {
    edit_for(std::chrono::milliseconds(between(500, 2000)), true);
    block_with_directory(auth);
    switch (between(0, 3)) {
      case 0: // longer than the deadline with no edit: the writer gives up
        ++long_spells_quiet;
        edit();
        edit_for(4500ms, false);
        break;
      case 1: // longer than the deadline, but every edit restarts it
        ++long_spells_editing;
        edit_for(4500ms, true);
        break;
      default: // shorter than the deadline
        ++short_spells;
        edit_for(std::chrono::milliseconds(between(100, 2500)), true);
    }
    fs::remove_all(auth);
  }
  edit_for(1s, true);
  auto edits_per_s = double(version - edits_at_start) / seconds;

  auto sync = run(dir, {MCFGCTL, "--config", node_yaml, "sync"});
  CHECK(sync.exit_code == 0);
  CHECK(read_file(auth) == latest);
  CHECK(process_alive(mcfgd.pid()));
  auto fds_after = open_fds(mcfgd.pid());
  auto rss_after = rss_kib(mcfgd.pid());
  auto log = read_file(err_log);
  auto restarts = count_of(log, "restarted child 'file1'");
  MESSAGE("fault soak: " << seconds << " s, " << version - edits_at_start
                         << " edits (" << edits_per_s << "/s), spells: "
                         << short_spells << " short, " << long_spells_editing
                         << " long with edits, " << long_spells_quiet
                         << " long without; writer restarts " << restarts
                         << "; open fds " << fds_before << " -> " << fds_after
                         << "; RSS " << rss_before << " -> " << rss_after
                         << " KiB");
  CHECK(edits_per_s >= 50);
  // One restart per quiet long spell: the writer gives up once, and its new
  // incarnation succeeds once the spell ends.
  CHECK(restarts == static_cast<size_t>(long_spells_quiet));
  CHECK(long_spells_quiet + long_spells_editing > 0);
  // Bounds: descriptors come back to where they were; memory grows by less
  // than 16 MiB over the run.
  CHECK(fds_after <= fds_before + 2);
  CHECK(rss_after - rss_before < 16 * 1024);
  CHECK(log.find("root supervisor gave up") == std::string::npos);
  mcfgd.signal(SIGTERM);
  CHECK(mcfgd.wait_exit_code(20s) == 0);
}
