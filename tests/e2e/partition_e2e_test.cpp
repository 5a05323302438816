// Partitions (issue 22): a real three-member etcd cluster on 127.0.0.11-13
// and real mcfgd nodes, in a network namespace of each case's own
// (support/netns.hpp), with nftables cutting links. Each case runs again
// inside `unshare -n`; the outer copy checks that it passed and that its
// namespace, and every process in it, is gone. Time is real; every wait is
// bounded.
//
// Members run as uids of their own (64001-64003), so that a rule can tell
// member 1's sockets from the others' (`meta skuid`) and the node (root)
// from the members. The test's writes go through etcdctl as member 2's
// uid to members 2 and 3: they reach the majority whatever is cut.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "node_harness.hpp"
#include "support/etcd_cluster.hpp"
#include "support/netns.hpp"
#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg::test;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

const std::string prefix = "/mcfg/";
/// node.yaml's source.etcd.stale_after in these cases.
constexpr auto stale_after = 2s;
/// One probe interval (a quarter of stale_after) and a write: what a
/// node may take beyond the bound to follow the majority.
constexpr auto floor_margin = 1s;
const std::vector<std::string> hosts{"127.0.0.11", "127.0.0.12", "127.0.0.13"};
const std::vector<uid_t> member_uids{64001, 64002, 64003};

etcd_cluster_options partition_cluster() {
  etcd_cluster_options o;
  o.hosts = hosts;
  o.ports = {{2379, 2380}, {2379, 2380}, {2379, 2380}};
  o.run_as = member_uids;
  return o;
}

/// Marks, from the start, the connections member 1 dials to its peers (1)
/// and those the node, root, makes to the members' client ports (2): on
/// loopback a connection to 127.0.0.12 runs from 127.0.0.12 whoever makes
/// it, so only the maker's uid tells them apart, and only from its side.
std::vector<std::string> connection_marks() {
  return {"meta skuid 64001 tcp dport 2380 ct mark set 1",
          "meta skuid 0 tcp dport 2379 ct mark set 2"};
}

/// Member 1 (on .11) cut off from its two peers, both ways; its client
/// port still answers everyone.
std::vector<std::string> member1_from_peers() {
  return {"ct mark 1 drop", "ip daddr 127.0.0.11 tcp dport 2380 drop",
          "ip saddr 127.0.0.11 tcp sport 2380 drop"};
}

/// The node (root) cut off from every member's client port, both ways of
/// its connections; the members (their gateways dial their own port) and
/// the test's etcdctl are not.
std::vector<std::string> node_from_members() {
  return {"ct mark 2 drop"};
}

/// Writes through members 2 and 3 (the majority) as member 2's uid;
/// returns the revision, retrying while they elect a leader.
int64_t majority_put(const temp_dir& dir, const std::string& key,
                     const std::string& value) {
  auto deadline = clock_type::now() + 15s;
  std::string last;
  while (clock_type::now() < deadline) {
    auto r = run(dir,
                 {"/usr/bin/setpriv", "--reuid=64002", "--regid=64002",
                  "--clear-groups", "--", "/usr/bin/etcdctl",
                  "--endpoints=http://127.0.0.12:2379,http://127.0.0.13:2379",
                  "--dial-timeout=1s", "--command-timeout=1s", "-w", "json",
                  "put", prefix + key, value},
                 20s);
    if (r.exit_code == 0) {
      auto j = nlohmann::json::parse(r.out, nullptr, false);
      if (j.is_object())
        return j["header"]["revision"].get<int64_t>();
    }
    last = r.err;
  }
  FAIL("no put through the majority: " << last);
  return 0;
}

std::string user_json(const std::string& pw) {
  return R"({"password": ")" + pw + R"("})";
}

/// One mcfgd with `endpoints` in that order (the first is the one it
/// prefers), stale_after 2s, one auth file.
struct partition_node {
  temp_dir dir;
  std::string name;
  std::string node_yaml = dir / "node.yaml";
  std::string auth = dir / "memcached.auth";
  std::string err = dir / "mcfgd.err";
  std::unique_ptr<child_process> mcfgd;

  partition_node(std::string node_name, const std::vector<size_t>& order)
    : name(std::move(node_name)) {
    std::string endpoints;
    for (auto i : order)
      endpoints += (endpoints.empty() ? "\"" : ", \"") + std::string{"http://"}
                   + hosts[i] + ":2379\"";
    write_text(node_yaml, "name: " + name
                            + "\nsource:\n  etcd:\n    endpoints: [" + endpoints
                            + "]\n    prefix: " + prefix
                            + "\n    stale_after: 2s\n"
                              "files:\n"
                              "  - module: memcached_passwords\n"
                              "    path: memcached.auth\n");
  }

  ~partition_node() {
    if (!mcfgd)
      return;
    mcfgd->signal(SIGTERM);
    if (!mcfgd->wait_exit(10s))
      mcfgd->signal(SIGKILL);
    mcfgd.reset();
  }

  void start() {
    mcfgd = std::make_unique<child_process>(
      std::vector<std::string>{MCFGD, "--config", node_yaml}, dir / "mcfgd.out",
      err, /*append=*/true);
    REQUIRE_MESSAGE(eventually([&] { return fs_exists(auth); }, 20s),
                    read_file(err));
  }

  static bool fs_exists(const std::string& p) {
    return std::filesystem::exists(p);
  }

  std::string file() const {
    return read_file(auth);
  }

  bool holds(const std::string& user) const {
    return file().find(user + ":") != std::string::npos;
  }

  run_result ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {MCFGCTL, "--config", node_yaml});
    return run(dir, std::move(args), 30s);
  }

  /// mcfgctl health: 0 healthy (/healthz 200), 1 not (503).
  int health() {
    return ctl({"health"}).exit_code;
  }
};

/// What a case inside the namespace starts from: the cluster, alice in it.
struct partitioned {
  temp_dir dir;
  etcd_cluster cluster;

  partitioned() : cluster(set_up_then(partition_cluster())) {
    majority_put(dir, "users/alice", user_json("Pw-alice-1"));
  }

  ~partitioned() {
    // Heal before the cluster stops: members cut off wait for peers.
    try {
      netns::heal(dir);
    } catch (const std::exception& e) {
      MESSAGE("could not heal: " << e.what());
    }
  }

  etcd_cluster_options set_up_then(etcd_cluster_options o) {
    netns::set_up(hosts);
    netns::mark(dir, connection_marks());
    return o;
  }
};

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

} // namespace

#define PARTITION_CASE(NAME, BODY)                                          \
  TEST_CASE(NAME) {                                                         \
    /* scripts/install-deps installs them; CI runs as root. */              \
    bool can_run = netns::available() && etcd_installed();                  \
    REQUIRE_MESSAGE(can_run, "needs root, unshare, ip, nft and etcd");      \
    if (!netns::inside()) {                                                 \
      /* NAME holds no ',' '*' '?' or '\\': doctest's filter reads them. */ \
      auto r = netns::run_inside(                                           \
        {netns::self_exe(), "--test-case=" NAME, "--no-version"});          \
      CHECK(r.exit_code == 0);                                              \
      CHECK(r.own_namespace);                                               \
      CHECK(r.namespace_gone);                                              \
      return;                                                               \
    }                                                                       \
    BODY();                                                                 \
  }

namespace {

void member_cut_from_peers() {
  partitioned p;
  partition_node n{"node1", {0, 1, 2}};
  n.start();
  REQUIRE(eventually([&] { return n.holds("alice"); }, 10s));
  REQUIRE(eventually([&] { return n.health() == 0; }, 10s));
  netns::cut(p.dir, member1_from_peers());
  // The put may wait for the majority to elect a leader (member 1 may
  // have been it); the bound counts from its commit.
  auto cut = clock_type::now();
  majority_put(p.dir, "users/bob", user_json("Pw-bob-1"));
  MESSAGE("the majority took the put " << seconds_since(cut) << " s after "
                                       << "the cut");
  auto put = clock_type::now();
  // Sampled until bob arrives: after stale_after (plus one probe) without
  // bob, the node must not call itself healthy.
  bool silent_and_healthy = false;
  while (!n.holds("bob") && clock_type::now() - put < stale_after + 10s) {
    auto late = clock_type::now() - put > stale_after + floor_margin / 2;
    auto healthy = n.health() == 0;
    if (late && healthy && !n.holds("bob"))
      silent_and_healthy = true;
  }
  auto took = seconds_since(put);
  MESSAGE("the node followed the majority " << took << " s after the put");
  CHECK(n.holds("bob"));
  CHECK(took
        <= std::chrono::duration<double>(stale_after + floor_margin).count());
  CHECK_FALSE(silent_and_healthy);
  CHECK(n.holds("alice"));
  // On the majority now: proven fresh again, healthy.
  CHECK(eventually([&] { return n.health() == 0; }, 10s));
  netns::heal(p.dir);
  majority_put(p.dir, "users/carol", user_json("Pw-carol-1"));
  CHECK(eventually([&] { return n.holds("carol"); }, 10s));
}

} // namespace

PARTITION_CASE("partition: the node's member cut off from its peers - the "
               "node follows the majority within stale_after and a floor",
               member_cut_from_peers)

namespace {

void node_cut_from_all() {
  partitioned p;
  partition_node n{"node1", {0, 1, 2}};
  n.start();
  REQUIRE(eventually([&] { return n.holds("alice"); }, 10s));
  auto before = n.file();
  INFO(read_file(n.err));
  netns::cut(p.dir, node_from_members());
  auto cut = clock_type::now();
  majority_put(p.dir, "users/bob", user_json("Pw-bob-1"));
  // Unhealthy within the bound (and a probe), saying why.
  CHECK(
    eventually([&] { return n.health() == 1; }, stale_after + floor_margin));
  MESSAGE("health reported the doubt " << seconds_since(cut)
                                       << " s after the cut");
  auto status = n.ctl({"status"});
  CHECK(status.out.find("source not proven fresh since 20")
        != std::string::npos);
  auto health = n.ctl({"health"});
  CHECK(health.out.find("source not proven fresh since") != std::string::npos);
  // The files keep the last good version; the node keeps running.
  CHECK(n.file() == before);
  CHECK(n.mcfgd->wait_exit(0ms) == std::nullopt);
  netns::heal(p.dir);
  CHECK(eventually([&] { return n.holds("bob"); }, 15s));
  CHECK(eventually([&] { return n.health() == 0; }, 10s));
  CHECK(read_file(n.err).find("Pw-") == std::string::npos);
}

} // namespace

PARTITION_CASE("partition: the node cut off from every member - files kept "
               "and health 503 until it heals and converges",
               node_cut_from_all)

namespace {

/// The n in the node's "bob:Pw-bob-<n>" line; -1 without one.
int bob_generation(const partition_node& n) {
  auto text = n.file();
  auto at = text.find("bob:Pw-bob-");
  if (at == std::string::npos)
    return -1;
  return std::atoi(text.c_str() + at + 11);
}

void preferred_minority() {
  partitioned p;
  partition_node n{"node1", {0, 1, 2}};
  n.start();
  REQUIRE(eventually([&] { return n.holds("alice"); }, 10s));
  netns::cut(p.dir, member1_from_peers());
  // bob's password changes every few hundred ms on the majority (memcached
  // reads at most 8 users: one user, many revisions); at each change, what
  // the node says.
  std::vector<clock_type::time_point> commits;
  bool stale_as_fresh = false;
  auto start = clock_type::now();
  for (int i = 0; clock_type::now() - start < 6s; ++i) {
    majority_put(p.dir, "users/bob", user_json("Pw-bob-" + std::to_string(i)));
    commits.push_back(clock_type::now());
    auto now = clock_type::now();
    bool healthy = n.health() == 0;
    auto held = bob_generation(n);
    // Healthy means fresh: the node holds every change the majority made
    // more than the bound (and a probe) ago.
    for (int c = 0; c < static_cast<int>(commits.size()); ++c)
      if (healthy && now - commits[c] > stale_after + floor_margin / 2
          && held < c)
        stale_as_fresh = true;
  }
  CHECK_FALSE(stale_as_fresh);
  INFO(read_file(n.err));
  // A sync on the node asks etcd (linearizably, so not member 1's view)
  // and returns with the newest change in, or fails: never stale.
  int last = static_cast<int>(commits.size());
  majority_put(p.dir, "users/bob", user_json("Pw-bob-" + std::to_string(last)));
  auto sync = n.ctl({"sync"});
  MESSAGE("sync after " << last << " changes: exit " << sync.exit_code);
  if (sync.exit_code == 0)
    CHECK(bob_generation(n) == last);
  CHECK(eventually([&] { return bob_generation(n) == last; }, stale_after));
}

} // namespace

PARTITION_CASE("partition: a minority member the node prefers never has it "
               "serve a revision the majority moved past as fresh",
               preferred_minority)

namespace {

void cut_during_cluster_sync() {
  partitioned p;
  partition_node n1{"node1", {0, 1, 2}};
  partition_node n2{"node2", {1, 2, 0}};
  n1.start();
  n2.start();
  REQUIRE(
    eventually([&] { return n1.holds("alice") && n2.holds("alice"); }, 10s));
  auto rev = majority_put(p.dir, "users/bob", user_json("Pw-bob-1"));
  // mcfgctl with node1's settings: it too prefers member 1.
  temp_dir ctl_dir;
  auto out = ctl_dir / "sync.out";
  auto err = ctl_dir / "sync.err";
  auto started = clock_type::now();
  child_process sync{{MCFGCTL, "--config", n1.node_yaml, "--timeout", "20s",
                      "sync", "--cluster"},
                     out,
                     err};
  netns::cut(p.dir, member1_from_peers());
  auto rc = sync.wait_exit_code(30s);
  MESSAGE("sync --cluster: " << read_file(out) << read_file(err) << " after "
                             << seconds_since(started) << " s");
  CHECK(rc == 0);
  CHECK(read_file(out).find("2 nodes hold revision") != std::string::npos);
  CHECK(n1.holds("bob"));
  CHECK(n2.holds("bob"));
  CHECK(rev > 0);
}

} // namespace

PARTITION_CASE("partition: a cut during sync --cluster - it still returns "
               "once both nodes hold the revision",
               cut_during_cluster_sync)
