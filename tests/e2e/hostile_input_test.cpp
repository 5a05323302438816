// Inputs that used to end a running mcfgd, against the real binary (issue
// 19's reproduced cases): an etcd value holding a number no double holds
// (`1e400`: the JSON library threw out_of_range on the follower's thread),
// and a source user name saved in Latin-1 (GET /v1/status threw inside
// libmicrohttpd's callback). Each time the node must stay up, refuse the
// input naming where it is, keep the last good file and answer its control
// API with well-formed JSON. Time is real here; every wait is bounded.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "node_harness.hpp"
#include "raw_http.hpp"
#include "support/etcd_cluster.hpp"
#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string prefix = "/hostile/";

/// mcfgd on `node_yaml` (one auth file, no refresh), killed at the end.
struct hostile_node {
  temp_dir dir;
  std::string node_yaml = dir / "node.yaml";
  std::string source = dir / "cluster.yaml";
  std::string auth = dir / "run/memcached.auth";
  std::string err = dir / "mcfgd.err";
  http_target control{dir / "mcfgd.sock"};
  std::unique_ptr<child_process> mcfgd;

  /// `source_lines`: node.yaml's source, e.g. "source: cluster.yaml\n".
  explicit hostile_node(const std::string& source_lines) {
    write_text(node_yaml, source_lines
                            + "retry: {interval: 100ms, deadline: 30s}\n"
                              "files:\n"
                              "  - module: memcached_passwords\n"
                              "    path: run/memcached.auth\n");
  }

  ~hostile_node() {
    if (mcfgd) {
      mcfgd->signal(SIGKILL);
      mcfgd->wait_exit(5s);
    }
  }

  void start() {
    mcfgd = std::make_unique<child_process>(
      std::vector<std::string>{MCFGD, "--config", node_yaml}, dir / "mcfgd.out",
      err);
    REQUIRE_MESSAGE(eventually(
                      [&] {
                        return log().find("control: listening on unix:")
                                 != std::string::npos
                               && fs::exists(auth);
                      },
                      15s),
                    log());
  }

  std::string log() const {
    return read_file(err);
  }

  bool running() {
    return mcfgd && !mcfgd->wait_exit(0ms);
  }

  /// GET `path`'s reply; its body must be a JSON object.
  json get_json(const std::string& path, int* status = nullptr) {
    auto r = http_call(control, "GET", path);
    if (status)
      *status = r.status;
    auto doc = json::parse(r.body, nullptr, false);
    INFO(path << " answered: " << r.raw);
    REQUIRE_FALSE(doc.is_discarded());
    REQUIRE(doc.is_object());
    return doc;
  }

  /// The source's last refusal in GET /v1/status; empty while none.
  std::string last_refused() {
    auto src = get_json("/v1/status")["source"];
    return src["last_refused"].is_string()
             ? src["last_refused"].get<std::string>()
             : std::string{};
  }

  run_result ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {MCFGCTL, "--config", node_yaml});
    return run(dir, std::move(args), 30s);
  }
};

std::string etcd_source_lines(const etcd_cluster& cluster) {
  std::string endpoints;
  for (auto& url : cluster.endpoints())
    endpoints += (endpoints.empty() ? "" : ", ") + ("\"" + url + "\"");
  return "source:\n  etcd:\n    endpoints: [" + endpoints
         + "]\n    prefix: " + prefix + "\n";
}

/// The revision etcdctl reports for a put (`etcdctl -w json put`).
int64_t put(etcd_cluster& cluster, const std::string& key,
            const std::string& value) {
  auto out = cluster.etcdctl_ok({"-w", "json", "put", prefix + key, value});
  return json::parse(out)["header"]["revision"].get<int64_t>();
}

} // namespace

TEST_CASE("hostile input: an etcd value with 1e400 is refused with its key "
          "and revision, the node stays up with its file, and a later good "
          "revision applies") {
  etcd_cluster cluster;
  put(cluster, "users/alice", R"({"password": "Pw-alice-1", "roles": []})");
  hostile_node node{etcd_source_lines(cluster)};
  node.start();
  REQUIRE(eventually(
    [&] { return read_file(node.auth) == "alice:Pw-alice-1\n"; }, 15s));

  auto bad = put(cluster, "users/bob",
                 R"({"password": "Pw-bob-1", "roles": [], "n": 1e400})");
  auto where = "etcd " + prefix + "users/bob at revision "
               + std::to_string(bad);
  REQUIRE_MESSAGE(
    eventually(
      [&] { return node.last_refused().find(where) != std::string::npos; },
      15s),
    node.log());
  auto refused = node.last_refused();
  CHECK(refused.find("users/bob") != std::string::npos);
  CHECK(refused.find("not valid JSON") != std::string::npos);
  CHECK(node.get_json("/v1/status")["source"]["refused_edits"] == 1);
  int health = 0;
  auto problems = node.get_json("/healthz", &health);
  CHECK(health == 503);
  CHECK(problems["healthy"] == false);
  CHECK(node.running());
  CHECK(read_file(node.auth) == "alice:Pw-alice-1\n");

  auto good = put(cluster, "users/bob", R"({"password": "Pw-bob-1"})");
  CHECK(eventually(
    [&] { return read_file(node.auth) == "alice:Pw-alice-1\nbob:Pw-bob-1\n"; },
    15s));
  CHECK(eventually([&] { return node.last_refused().empty(); }));
  CHECK(node.running());

  // A key that is not valid UTF-8: refused by name, shown with \xHH.
  auto latin1 = put(cluster, "users/jos\xe9", R"({"password": "Pw-jose-1"})");
  auto latin1_where = "etcd " + prefix + "users/jos\\xE9 at revision "
                      + std::to_string(latin1);
  CHECK(eventually(
    [&] {
      return node.last_refused().find(latin1_where
                                      + ": users/jos\\xE9: user "
                                        "name is not valid UTF-8")
             != std::string::npos;
    },
    15s));
  CHECK(node.running());
  CHECK(read_file(node.auth) == "alice:Pw-alice-1\nbob:Pw-bob-1\n");
  auto log = node.log();
  CHECK(log.find(where) != std::string::npos);
  CHECK(log.find("revision " + std::to_string(good) + ": 1 keys changed")
        != std::string::npos);
  CHECK(log.find("Pw-bob-1") == std::string::npos);
  CHECK(log.find("Pw-alice-1") == std::string::npos);
}

TEST_CASE("hostile input: with 1e400 in etcd at start, mcfgd --check, mcfgd "
          "and mcfgctl export refuse with the key and revision, none "
          "aborts") {
  etcd_cluster cluster;
  put(cluster, "users/alice", R"({"password": "Pw-alice-1"})");
  auto bad = put(cluster, "users/bob",
                 R"({"password": "Pw-bob-1", "roles": [], "n": 1e400})");
  auto where = "etcd " + prefix + "users/bob at revision "
               + std::to_string(bad);
  hostile_node node{etcd_source_lines(cluster)};

  auto check = run(node.dir, {MCFGD, "--config", node.node_yaml, "--check"});
  CHECK(check.exit_code == 2);
  CHECK(check.err.find(where) != std::string::npos);
  CHECK(check.err.find("users/bob") != std::string::npos);
  CHECK(check.err.find("Pw-bob-1") == std::string::npos);

  auto start = run(node.dir, {MCFGD, "--config", node.node_yaml}, 30s);
  CHECK(start.exit_code == 2);
  CHECK(start.err.find(where) != std::string::npos);
  CHECK_FALSE(fs::exists(node.auth));

  auto exported = node.ctl({"export"});
  CHECK(exported.exit_code == 1);
  CHECK(exported.err.find(where) != std::string::npos);
  CHECK(exported.out.find("Pw-") == std::string::npos);
  CHECK(exported.err.find("Pw-") == std::string::npos);
}

TEST_CASE("hostile input: a source user name in Latin-1 is refused with line, "
          "column and key, status and healthz stay well-formed JSON, the node "
          "stays up") {
  hostile_node node{"source: cluster.yaml\n"};
  write_text(node.source, "users:\n  alice: {password: Pw-alice-1}\n");
  node.start();
  REQUIRE(eventually(
    [&] { return read_file(node.auth) == "alice:Pw-alice-1\n"; }, 15s));

  // `josé` saved as Latin-1: the single byte 0xE9.
  write_atomically(node.source, "users:\n"
                                "  alice: {password: Pw-alice-1}\n"
                                "  jos\xe9: {password: Pw-jose-1}\n");
  auto expected = node.source
                  + ":3:3: users/jos\\xE9: user name is not valid UTF-8 "
                    "(save the source as UTF-8)";
  REQUIRE_MESSAGE(eventually([&] { return node.last_refused() == expected; },
                             15s),
                  node.log());
  for (int poll = 0; poll < 5; ++poll) {
    int status = 0;
    auto st = node.get_json("/v1/status", &status);
    CHECK(status == 200);
    CHECK(st["source"]["refused_edits"] == 1);
    auto health = node.get_json("/healthz", &status);
    CHECK(status == 503);
    REQUIRE(health["problems"].size() >= 1);
    CHECK(health["problems"][0].get<std::string>().find("users/jos\\xE9")
          != std::string::npos);
    auto metrics = http_call(node.control, "GET", "/metrics");
    CHECK(metrics.status == 200);
  }
  CHECK(node.running());
  CHECK(read_file(node.auth) == "alice:Pw-alice-1\n");
  CHECK(node.ctl({"status"}).exit_code == 0);
  // mcfgctl given a file name in Latin-1: asked for, and refused by the
  // node as an unknown file, rather than thrown on.
  auto sync = node.ctl({"sync", "/run/m\xe9.auth"});
  CHECK(sync.exit_code == 1);
  CHECK(sync.err.find("HTTP 404") != std::string::npos);

  // Saved again as UTF-8: the same user applies.
  write_atomically(node.source, "users:\n"
                                "  alice: {password: Pw-alice-1}\n"
                                "  jos\xc3\xa9: {password: Pw-jose-1}\n");
  CHECK(eventually(
    [&] {
      return read_file(node.auth)
             == "alice:Pw-alice-1\njos\xc3\xa9:Pw-jose-1\n";
    },
    15s));
  CHECK(eventually([&] { return node.last_refused().empty(); }));
  CHECK(node.running());
  CHECK(node.log().find("Pw-jose-1") == std::string::npos);
}
