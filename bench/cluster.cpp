// The cluster_propagation group (ARCHITECTURE.md §6): N mcfgd nodes on this
// machine follow one three-member etcd cluster (Debian's etcd, on loopback);
// one put of a user's password is timed until every node's file holds it and
// the refresh that follows ran. Each node's consumer stands in for memcached:
// a shell that appends a line to a marker file when it gets SIGHUP (the
// node's refresh: {signal: HUP, pidfile}); the bench polls (every 200 us)
// until every file holds the new password and every marker grew, noting
// when etcd answered the put and when the first and the last node's file
// held it, to say where the time goes. (File times are too coarse to time
// this: the kernel stamps them at its tick, 4 ms here.) Interleaved
// with the durable write floor, measured in the same run (the target: p50
// <= 3 x floor's p50).
//
// cluster_partition (issue 22): one node, stale_after 2 s, preferring
// member 1 of a cluster on 127.0.0.11-13 in a network namespace of its own
// (tests/support/netns.hpp, as the partition tests). Each round cuts
// member 1 off from its peers and times, from the cut (and from the
// majority's answer to the put), until the node's file holds a put the
// majority took (target: <= stale_after + 2 floors);
// then cuts the node off from every member and times until its health
// reports the doubt (target: <= stale_after).
#include <sys/stat.h>

#include <memory>

#include "bench/bench_support.hpp"
#include "memcached_cfg/etcd/client.hpp"
#include "support/etcd_cluster.hpp"
#include "support/netns.hpp"
#include "support/process_helpers.hpp"

namespace mcfg::bench {
namespace {

/// The size of `path`; 0 when missing.
int64_t size_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

struct bench_node {
  std::string dir;
  std::string auth;
  std::string marker;
  std::unique_ptr<test::child_process> consumer;
  std::unique_ptr<test::child_process> mcfgd;
};

void run(const options& opt, size_t node_count) {
  auto name = "cluster_propagation_" + std::to_string(node_count);
  scratch_dir scratch{opt.dir, name};
  auto floor_dir = scratch.sub("floor");
  auto bytes = floor_bytes();
  std::unique_ptr<test::etcd_cluster> cluster;
  try {
    cluster = std::make_unique<test::etcd_cluster>();
  } catch (const std::exception& e) {
    fail(std::string{"etcd: "} + e.what());
  }
  std::string endpoints;
  for (auto& url : cluster->endpoints())
    endpoints += (endpoints.empty() ? "\"" : ", \"") + url + "\"";
  etcd::client_options copts;
  copts.endpoints = cluster->endpoints();
  etcd::client client{copts};
  client.put("/bench/users/u", R"({"password": "v0"})");

  std::vector<bench_node> nodes(node_count);
  for (size_t i = 0; i < node_count; ++i) {
    auto& n = nodes[i];
    n.dir = scratch.sub("node" + std::to_string(i));
    n.auth = n.dir + "/auth";
    n.marker = n.dir + "/refreshed";
    // `wait` returns at the signal; the trap's echo is a builtin: no fork.
    n.consumer = std::make_unique<test::child_process>(
      std::vector<std::string>{"sh", "-c",
                               "trap 'echo r >> " + n.marker
                                 + "' HUP; "
                                   "while :; do sleep 1 & wait $!; done"});
    std::ofstream{n.dir + "/consumer.pid"} << n.consumer->pid() << "\n";
    std::ofstream{n.dir + "/node.yaml"}
      << "name: n" << i << "\n"
      << "source: {etcd: {endpoints: [" << endpoints << "], prefix: /bench/}}\n"
      << "files:\n"
      << "  - module: memcached_passwords\n"
      << "    path: auth\n"
      << "    refresh: {signal: HUP, pidfile: consumer.pid}\n";
    n.mcfgd = std::make_unique<test::child_process>(
      std::vector<std::string>{MCFGD, "--config", n.dir + "/node.yaml",
                               "--log-level", "warning"},
      n.dir + "/out", n.dir + "/err");
  }
  // When the first and the last node's file held a change (now_ns()).
  struct arrivals {
    int64_t first_file = 0;
    int64_t last_file = 0;
  };
  arrivals seen;
  // Until every file holds `content` and then its marker grew past `sizes`;
  // returns the new sizes, and the files' arrivals in `seen`.
  auto wait_all = [&](const std::vector<int64_t>& sizes,
                      const std::string& content) {
    auto deadline = steady::now() + std::chrono::seconds(30);
    std::vector<int64_t> now(nodes.size());
    std::vector<int64_t> file_at(nodes.size(), 0);
    for (;;) {
      bool all = true;
      for (size_t i = 0; i < nodes.size(); ++i) {
        now[i] = size_of(nodes[i].marker);
        if (file_at[i] == 0 && read_file(nodes[i].auth) == content)
          file_at[i] = now_ns();
        all = all && file_at[i] != 0 && now[i] > sizes[i];
      }
      if (all) {
        seen.first_file = *std::min_element(file_at.begin(), file_at.end());
        seen.last_file = *std::max_element(file_at.begin(), file_at.end());
        return now;
      }
      check(steady::now() < deadline,
            name + ": a node did not take the change within 30 s");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  };
  auto sizes = wait_all(std::vector<int64_t>(node_count, 0), "u:v0\n");

  // propagation = commit (the put until etcd answered) + the rest: until
  // the first node's file, the last node's, and every refresh after it.
  distribution floor, propagation, commit, first_file, last_file, refreshed;
  const size_t block = 5;
  const size_t rounds = (opt.quick ? 10 : (node_count > 3 ? 40 : 100)) / block;
  uint64_t n = 0;
  for (size_t r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < block; ++i)
      time_floor(floor, floor_dir, bytes, true);
    for (size_t i = 0; i < block; ++i) {
      auto value = "v" + std::to_string(++n);
      auto t0 = now_ns();
      client.put("/bench/users/u", R"({"password": ")" + value + "\"}");
      auto answered = now_ns();
      sizes = wait_all(sizes, "u:" + value + "\n");
      auto done = now_ns();
      propagation.add_ns(done - t0);
      commit.add_ns(answered - t0);
      first_file.add_ns(seen.first_file - answered);
      last_file.add_ns(seen.last_file - answered);
      refreshed.add_ns(done - seen.last_file);
    }
  }
  for (auto& node : nodes)
    node.mcfgd->signal(SIGTERM);
  for (auto& node : nodes) {
    node.mcfgd->wait_exit(std::chrono::seconds(10));
    node.consumer.reset();
  }
  auto f50 = floor.p50();
  json_line{name}
    .add("nodes", node_count)
    .add("p50_us", propagation.p50())
    .add("p99_us", propagation.p99())
    .add("samples", propagation.us.size())
    .add("floor_p50_us", f50)
    .add("ratio_p50_to_floor", propagation.p50() / f50, 3)
    .add("commit_p50_us", commit.p50())
    .add("first_file_p50_us", first_file.p50())
    .add("last_file_p50_us", last_file.p50())
    .add("refreshed_p50_us", refreshed.p50())
    .print();
}

// -- cluster_partition --------------------------------------------------------

const std::vector<std::string> partition_hosts{"127.0.0.11", "127.0.0.12",
                                               "127.0.0.13"};
constexpr auto partition_bound = std::chrono::seconds(2);

/// mcfgctl health against the node: 0 healthy, 1 not.
int health_of(const std::string& dir) {
  test::child_process p{{MCFGCTL, "--config", dir + "/node.yaml", "health"},
                        dir + "/health.out",
                        dir + "/health.err"};
  return p.wait_exit_code(std::chrono::seconds(10)).value_or(-1);
}

/// Polls every millisecond until `done`, for up to 30 s; the time it took.
template <class Done>
int64_t time_until(int64_t from_ns, Done done, const std::string& what) {
  auto deadline = steady::now() + std::chrono::seconds(30);
  while (!done()) {
    check(steady::now() < deadline, "cluster_partition: " + what);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return now_ns() - from_ns;
}

/// Inside the namespace: the cluster, the node, the rounds.
void partition_inside(const options& opt) {
  test::temp_dir rules;
  test::netns::set_up(partition_hosts);
  // As the partition tests: mark member 1's peer connections and the
  // node's (root's) client connections from the start.
  test::netns::mark(rules, {"meta skuid 64001 tcp dport 2380 ct mark set 1",
                            "meta skuid 0 tcp dport 2379 ct mark set 2"});
  test::etcd_cluster_options o;
  o.hosts = partition_hosts;
  o.ports = {{2379, 2380}, {2379, 2380}, {2379, 2380}};
  o.run_as = {64001, 64002, 64003};
  test::etcd_cluster cluster{o};
  etcd::client_options copts;
  copts.endpoints = {cluster.endpoint(1), cluster.endpoint(2)};
  copts.retry_for = std::chrono::seconds(15);
  // A put to a member that forwards to a leader just cut off hangs: try
  // the other soon.
  copts.request_timeout = std::chrono::milliseconds(1000);
  etcd::client majority{copts};
  majority.put("/bench/users/u", R"({"password": "v0"})");
  scratch_dir scratch{opt.dir, "cluster_partition"};
  auto dir = scratch.sub("node");
  std::ofstream{dir + "/node.yaml"}
    << "name: n0\nsource: {etcd: {endpoints: [\"" << cluster.endpoint(0)
    << "\", \"" << cluster.endpoint(1) << "\", \"" << cluster.endpoint(2)
    << "\"], prefix: /bench/, stale_after: 2s}}\n"
    << "files:\n  - module: memcached_passwords\n    path: auth\n";
  test::child_process mcfgd{{MCFGD, "--config", dir + "/node.yaml",
                             "--log-level", "warning"},
                            dir + "/out",
                            dir + "/err"};
  auto holds = [&](const std::string& v) {
    return read_file(dir + "/auth") == "u:" + v + "\n";
  };
  time_until(
    now_ns(), [&] { return holds("v0"); }, "the node did not start");
  distribution follow, committed, doubt;
  auto rounds = opt.quick ? 1 : 5;
  for (int r = 1; r <= rounds; ++r) {
    auto value = "v" + std::to_string(r);
    test::netns::cut(rules, {"ct mark 1 drop",
                             "ip daddr 127.0.0.11 tcp dport 2380 drop",
                             "ip saddr 127.0.0.11 tcp sport 2380 drop"});
    auto cut = now_ns();
    majority.put("/bench/users/u", R"({"password": ")" + value + "\"}");
    auto commit = now_ns();
    follow.add_ns(time_until(
      cut, [&] { return holds(value); },
      "the node did not follow the majority"));
    committed.add_ns(now_ns() - commit);
    test::netns::heal(rules);
    time_until(
      now_ns(), [&] { return health_of(dir) == 0; },
      "the node did not recover after a heal");
    test::netns::cut(rules, {"ct mark 2 drop"});
    cut = now_ns();
    doubt.add_ns(time_until(
      cut, [&] { return health_of(dir) == 1; },
      "health did not report the doubt"));
    test::netns::heal(rules);
    time_until(
      now_ns(), [&] { return health_of(dir) == 0; },
      "the node did not recover after a heal");
  }
  mcfgd.signal(SIGTERM);
  mcfgd.wait_exit(std::chrono::seconds(10));
  auto bound_us = static_cast<double>(
    std::chrono::duration_cast<std::chrono::microseconds>(partition_bound)
      .count());
  json_line{"cluster_partition"}
    .add("rounds", rounds)
    .add("stale_after_us", bound_us)
    .add("follow_p50_us", follow.p50())
    .add("follow_max_us", follow.pct(1.0))
    .add("after_commit_p50_us", committed.p50())
    .add("after_commit_max_us", committed.pct(1.0))
    .add("doubt_p50_us", doubt.p50())
    .add("doubt_max_us", doubt.pct(1.0))
    .print();
}

} // namespace

void cluster_3_group(const options& opt) {
  run(opt, 3);
}

void cluster_10_group(const options& opt) {
  run(opt, 10);
}

void cluster_30_group(const options& opt) {
  run(opt, 30);
}

void cluster_partition_group(const options& opt) {
  if (test::netns::inside()) {
    partition_inside(opt);
    return;
  }
  if (!test::netns::available()) {
    json_line{"cluster_partition"}
      .add("skipped", "needs root, unshare, ip and nft")
      .print();
    return;
  }
  // Again, in a network namespace of its own: its JSON line is inherited.
  std::vector<std::string> args{test::netns::self_exe(), "--scenario",
                                "cluster_partition", "--dir", opt.dir};
  if (opt.quick)
    args.push_back("--quick");
  auto r = test::netns::run_inside(args);
  check(r.exit_code == 0, "cluster_partition failed inside its namespace");
  check(r.namespace_gone, "cluster_partition left a process behind");
}

} // namespace mcfg::bench
