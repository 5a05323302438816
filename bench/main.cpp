// mcfg_bench: how close the memcached_cfg writer gets to the file system's
// own limit, as ratios measured in one run (bench/README.md).
//
//   mcfg_bench [--dir DIR] [--json FILE] [--quick]       every scenario
//   mcfg_bench --scenario GROUP [--dir DIR] [--quick]    one group, JSON only
//
// The driver runs each group (scenarios.hpp, one file each) in a fresh
// process of its own (so that the memory figures start from a clean heap and
// no group inherits another's threads or garbage), echoes the JSON lines, and
// prints a table (table.cpp).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bench/scenarios.hpp"
#include "bench/table.hpp"
#include "memcached_cfg/messages/log.hpp"
#include "memcached_cfg/supervision/log.hpp"

namespace fs = std::filesystem;

namespace mcfg::bench {
namespace {

struct group {
  const char* name;
  void (*run)(const options&);
};

/// The groups in the order a full run takes them.
const group groups[] = {
  {"machine", machine_group},
  {"memory", memory_group},
  {"memory_caf", memory_caf_group},
  {"latency", latency_group},
  {"latency_nofsync", latency_nofsync_group},
  {"burst", burst_group},
  {"throughput", throughput_group},
  {"restart", restart_group},
  {"propagation", propagation_group},
  {"confirmed", confirmed_group},
  {"cluster_3", cluster_3_group},
  {"cluster_10", cluster_10_group},
  {"cluster_30", cluster_30_group},
  {"cluster_partition", cluster_partition_group},
  {"scale", scale_group},
  {"io_stall", io_stall_group},
};

std::string group_names() {
  std::string out;
  for (auto& g : groups)
    out += (out.empty() ? "" : " ") + std::string{g.name};
  return out;
}

int run_group(const options& opt) {
  // A restart logs lines (the supervisor through its own hook, the project's
  // code through messages/log); keep the output to JSON.
  log::set_sink([](log::level, const std::string&) {});
  sup::log::set_handler(
    [](sup::log::level, std::string_view, std::string_view) {});
  auto g = std::find_if(std::begin(groups), std::end(groups),
                        [&](const group& x) { return x.name == opt.scenario; });
  if (g == std::end(groups))
    fail("unknown scenario group " + opt.scenario);
  g->run(opt);
  return 0;
}

std::string shell_quote(const std::string& x) {
  std::string out = "'";
  for (char c : x) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string self_path() {
  std::vector<char> buf(4096);
  auto n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  check(n > 0, "readlink /proc/self/exe");
  return std::string(buf.data(), static_cast<size_t>(n));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
    .count();
}

/// Runs one group in a process of its own, echoing its lines to stdout and
/// `json_out` and keeping them in `into`.
void run_child(const options& opt, const std::string& exe,
               const std::string& name, std::ofstream& json_out,
               results& into) {
  auto cmd = shell_quote(exe) + " --scenario " + name + " --dir "
             + shell_quote(opt.dir) + " --burst-events "
             + std::to_string(opt.burst_events) + " --workers "
             + std::to_string(opt.workers) + (opt.quick ? " --quick" : "");
  auto started = std::chrono::steady_clock::now();
  auto pipe = ::popen(cmd.c_str(), "r");
  check(pipe != nullptr, "popen " + cmd);
  std::vector<char> buf(1 << 16);
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe)) {
    std::string line = buf.data();
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
      line.pop_back();
    if (line.empty())
      continue;
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    if (json_out)
      json_out << line << '\n';
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("scenario"))
      into[j["scenario"].get<std::string>()] = j;
  }
  auto rc = ::pclose(pipe);
  if (rc != 0)
    fail("scenario group " + name + " failed (status " + std::to_string(rc)
         + ")");
  std::fprintf(stderr, "mcfg_bench: %s took %.1f s\n", name.c_str(),
               seconds_since(started));
}

int run_all(const options& opt, const std::vector<std::string>& only) {
  auto exe = self_path();
  results r;
  std::ofstream json_out;
  if (!opt.json_path.empty())
    json_out.open(opt.json_path);
  auto t0 = std::chrono::steady_clock::now();
  for (auto& g : groups) {
    std::string name = g.name;
    if (only.empty() || name == "machine"
        || std::find(only.begin(), only.end(), name) != only.end())
      run_child(opt, exe, name, json_out, r);
  }
  print_table(r);
  std::printf("\nmcfg_bench: all scenarios in %.1f s; load average %.2f at "
              "the start, %.2f at the end\n",
              seconds_since(t0),
              r.count("machine")
                ? r["machine"]["loadavg_1m_at_start"].get<double>()
                : 0.0,
              load_average());
  return 0;
}

} // namespace
} // namespace mcfg::bench

int main(int argc, char** argv) {
  using namespace mcfg::bench;
  options opt;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        fail(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--dir")
      opt.dir = value();
    else if (arg == "--scenario")
      opt.scenario = value();
    else if (arg == "--only")
      only.push_back(value());
    else if (arg == "--json")
      opt.json_path = value();
    else if (arg == "--quick")
      opt.quick = true;
    else if (arg == "--burst-events")
      opt.burst_events = std::stoul(value());
    else if (arg == "--workers")
      opt.workers = std::stoul(value());
    else if (arg == "--help" || arg == "-h") {
      std::printf(
        "usage: mcfg_bench [--dir DIR] [--json FILE] [--quick] [--only GROUP]"
        "... [--burst-events N] [--workers N]\n"
        "       mcfg_bench --scenario GROUP [--dir DIR] [--quick]\n"
        "groups: %s\n",
        group_names().c_str());
      return 0;
    } else
      fail("unknown argument " + arg + " (try --help)");
  }
  if (opt.dir.empty()) {
    auto tmp = std::getenv("TMPDIR");
    opt.dir = std::string{tmp && *tmp ? tmp : "/tmp"} + "/mcfg-bench";
  }
  fs::create_directories(opt.dir);
  opt.dir = fs::absolute(opt.dir).lexically_normal().string();
  if (!opt.dir.empty() && opt.dir.back() == '/')
    opt.dir.pop_back();
  if (!opt.scenario.empty())
    return run_group(opt);
  return run_all(opt, only);
}
