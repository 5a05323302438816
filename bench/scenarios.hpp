#pragma once
// The benchmark's scenario groups, as the driver (main.cpp) sees them: the
// run's options and one entry per group. Each group runs in a process of its
// own and prints JSON lines; this header stays free of CAF so that the
// driver compiles quickly.
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace mcfg::bench {

struct options {
  std::string dir;
  std::string scenario;
  std::string json_path;
  bool quick = false;
  size_t burst_events = 100'000;
  /// CAF scheduler threads; 0 keeps CAF's default (max(4, cores)).
  size_t workers = 0;
};

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "mcfg_bench: %s\n", what.c_str());
  std::exit(1);
}

inline void check(bool ok, const std::string& what) {
  if (!ok)
    fail(what);
}

// -- the groups, one file each ------------------------------------------------

/// machine.cpp: the cores, CPU, file system and CAF the figures came from.
void machine_group(const options& opt);
/// The 1-minute load average: how busy the (shared) machine was.
double load_average();

/// latency.cpp: the system-call floor, the file port and the writer, one
/// change at a time; with fsync, and without.
void latency_group(const options& opt);
void latency_nofsync_group(const options& opt);

/// flood.cpp: many changes sent at once: all distinct (burst), or none
/// changing anything (throughput).
void burst_group(const options& opt);
void throughput_group(const options& opt);

/// memory.cpp: what an idle writer costs, and what a bare CAF actor does.
void memory_group(const options& opt);
void memory_caf_group(const options& opt);

/// restart.cpp: a supervised writer killed, until its successor wrote.
void restart_group(const options& opt);

/// propagation.cpp: the real node (mcfgd) with its file backend: a source
/// saved (renamed into place; in place) until the file holds it.
void propagation_group(const options& opt);
/// confirmed.cpp: the real node with a real memcached and `verify`: a
/// source saved until memcached lets the new user in, and until
/// `mcfgctl sync` returns (confirmed).
void confirmed_group(const options& opt);
/// cluster.cpp: one put to etcd until every node's file holds it and its
/// refresh ran, for 3 and 10 mcfgd nodes on this machine.
void cluster_3_group(const options& opt);
void cluster_10_group(const options& opt);
void cluster_30_group(const options& opt);
/// cluster.cpp: a partition in a network namespace: from the cut until the
/// node follows the majority, and until its health reports the doubt.
void cluster_partition_group(const options& opt);
/// scale.cpp: the real node with 1,000 and 10,000 files of one source:
/// start, an edit, idle cost, memory and status, against the floor of as
/// many durable replacements on a pool of as many threads (issue 23).
void scale_group(const options& opt);
/// io_stall.cpp: mcfgd's files supervisor in this process, 1,000 files,
/// 4 of them on a port whose writes hang: what the others and status see.
void io_stall_group(const options& opt);

} // namespace mcfg::bench
