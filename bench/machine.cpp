// The machine group: the cores, CPU, file system and CAF a run's figures
// came from, and how busy the (shared) machine was.
#include <cstdio>
#include <fstream>
#include <thread>

#include <sys/statfs.h>

#include <caf/config.hpp>

#include "bench/bench_support.hpp"

namespace mcfg::bench {
namespace {

std::string cpu_model() {
  std::ifstream in{"/proc/cpuinfo"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto pos = line.find(':');
      return pos == std::string::npos ? line : line.substr(pos + 2);
    }
  return "unknown";
}

std::string fs_type(const std::string& dir) {
  struct statfs st;
  if (::statfs(dir.c_str(), &st) != 0)
    return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794C7630:
      return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "0x%lx",
                    static_cast<unsigned long>(st.f_type));
      return buf;
    }
  }
}

} // namespace

/// The 1-minute load average: how busy the (shared) machine was.
double load_average() {
  double x = 0;
  if (auto f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &x) != 1)
      x = 0;
    std::fclose(f);
  }
  return x;
}

void machine_group(const options& opt) {
  bench_system bs{opt};
  json_line{"machine"}
    .add("nproc", std::thread::hardware_concurrency())
    .add("cpu", cpu_model())
    .add("fs", fs_type(opt.dir))
    .add("dir", opt.dir)
    .add("caf_version", std::to_string(CAF_MAJOR_VERSION) + "."
                          + std::to_string(CAF_MINOR_VERSION) + "."
                          + std::to_string(CAF_PATCH_VERSION))
    .add("caf_workers", bs.sys->scheduler().num_workers())
#ifdef NDEBUG
    .add("build", "release")
#else
    .add("build", "debug")
#endif
    .add("quick", opt.quick)
    .add("loadavg_1m_at_start", load_average(), 2)
    .print();
}

} // namespace mcfg::bench
