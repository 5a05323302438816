// The control API against a running mcfgd with a real memcached: who may use
// it (README's security section, sentence by sentence), every endpoint,
// mcfgctl, and clients that misbehave. No password appears in any answer,
// metric or log of these runs.
#include <doctest/doctest.h>

#include <grp.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "memcached_cfg/control/server.hpp"
#include "node_fixture.hpp"
#include "support/log_capture.hpp"
#include "support/prometheus_text.hpp"

using namespace mcfg::test;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string alice_pw = "Pw-api-alice-1";
const std::string bob_pw = "Pw-api-bob-1";
const std::string bob_new_pw = "Pw-api-bob-2";
const std::string token = "tok-3f9a1c0b7e";

struct api_node : running_node {
  /// `control` is node.yaml's control section, if any.
  explicit api_node(const std::string& control = {})
    : running_node(alice_pw, bob_pw, control) {
  }

  /// With a token file and control.listen on `host`:`port`.
  static std::string tcp_control(uint16_t port,
                                 const std::string& host = "127.0.0.1",
                                 const std::string& extra = {}) {
    return "control:\n  listen: \"" + host + ":" + std::to_string(port)
           + "\"\n  token_file: token\n" + extra;
  }

  void write_token(mode_t mode = 0600) {
    write_text(dir / "token", token + "\n");
    ::chmod((dir / "token").c_str(), mode);
  }

  json get_json(const std::string& path) {
    auto r = call("GET", path);
    auto doc = json::parse(r.body, nullptr, false);
    REQUIRE_FALSE(doc.is_discarded());
    return doc;
  }

  /// Writes of the file at `index` in node.yaml, as status says.
  uint64_t writes(size_t index) {
    return get_json("/v1/status?files=all")
      .at("files")
      .at(index)
      .at("writes")
      .get<uint64_t>();
  }

  void check_no_secrets() {
    running_node::check_no_secrets({alice_pw, bob_pw, bob_new_pw});
  }
};

/// Inodes of the TCP sockets in LISTEN state (IPv4 and IPv6).
std::set<std::string> listening_tcp_inodes() {
  std::set<std::string> out;
  for (auto table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in{table};
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
      std::istringstream words{line};
      std::string field;
      std::vector<std::string> fields;
      while (words >> field)
        fields.push_back(field);
      if (fields.size() > 9 && fields[3] == "0A")
        out.insert(fields[9]);
    }
  }
  return out;
}

/// Inodes of the sockets `pid` holds open.
std::set<std::string> socket_inodes(pid_t pid) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto& entry :
       fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    auto target = fs::read_symlink(entry.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0)
      out.insert(target.substr(8, target.size() - 9));
  }
  return out;
}

/// mcfgd's TCP listening sockets.
size_t tcp_listeners_of(pid_t pid) {
  auto listening = listening_tcp_inodes();
  size_t n = 0;
  for (auto& inode : socket_inodes(pid))
    n += listening.count(inode);
  return n;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("no CAF network layer: with no control.listen mcfgd opens no TCP "
          "port at all and has not loaded libcaf_io") {
  api_node n;
  n.start();
  CHECK(tcp_listeners_of(n.mcfgd->pid()) == 0);
  auto maps = read_file("/proc/" + std::to_string(n.mcfgd->pid()) + "/maps");
  REQUIRE(contains(maps, "libcaf_core"));
  CHECK_FALSE(contains(maps, "libcaf_io"));
  // The Unix socket answers, so the test looked at a working node.
  CHECK(n.call("GET", "/healthz").status == 200);
  CHECK(n.stop() == 0);
}

TEST_CASE("the control socket is mcfgd's own, mode 0600, a stale one is "
          "replaced at start, a live one refused, and it is removed at stop") {
  api_node n;
  // A stale socket file from a node that died: nothing listens on it.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, n.socket.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    ::close(fd);
  }
  REQUIRE(fs::is_socket(n.socket));
  n.start();
  struct stat st {};
  REQUIRE(::stat(n.socket.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(st.st_uid == ::geteuid());
  CHECK(n.call("GET", "/healthz").status == 200);

  // A second node on the same socket (another node.yaml beside the first,
  // other files) is refused before it writes anything.
  auto other_yaml = n.dir / "other.yaml";
  write_text(other_yaml, "source: cluster.yaml\n"
                         "files:\n"
                         "  - module: memcached_passwords\n"
                         "    path: other/memcached.auth\n");
  auto second = run(n.dir, {MCFGD, "--config", other_yaml});
  CHECK(second.exit_code == 1);
  CHECK(contains(second.err, "another process is listening on it"));
  CHECK_FALSE(fs::exists(n.dir / "other"));
  CHECK(n.call("GET", "/healthz").status == 200);
  // On the same node.yaml, its lock refuses it first (node_lock_test.cpp).
  second = run(n.dir, {MCFGD, "--config", n.node_yaml});
  CHECK(second.exit_code == 1);
  CHECK(contains(second.err, "is in use by another mcfgd"));
  CHECK(n.call("GET", "/healthz").status == 200);

  CHECK(n.stop() == 0);
  CHECK_FALSE(fs::exists(n.socket));
}

TEST_CASE("another uid is refused: it cannot open the socket, and even with "
          "the socket opened up to everyone SO_PEERCRED answers 403") {
  api_node n;
  n.start();
  // nobody may reach the folder, not the socket.
  fs::permissions(n.dir.path, fs::perms::owner_all | fs::perms::others_exec
                                | fs::perms::group_exec);
  auto before = read_file(n.auth);
  auto writes = n.writes(0);
  std::vector<std::string> as_nobody = {"setpriv", "--reuid", "nobody",
                                        "--regid", "nogroup", "--clear-groups"};
  auto curl_as_nobody = [&](std::vector<std::string> args) {
    auto cmd = as_nobody;
    cmd.insert(cmd.end(), {"curl", "-sS", "-w", "\nstatus=%{http_code}\n",
                           "--unix-socket", n.socket});
    cmd.insert(cmd.end(), args.begin(), args.end());
    auto r = run(n.dir, cmd);
    n.outputs += r.out + r.err;
    return r;
  };
  auto refused = curl_as_nobody({"-X", "POST", "http://localhost/v1/reload"});
  CHECK(refused.exit_code == 7); // curl: failed to connect
  CHECK(contains(refused.err, "Couldn't connect to server"));
  // The connect itself failed (EACCES): the server never saw the client.
  CHECK_FALSE(contains(read_file(n.mcfgd_err), "refused a request from uid"));

  ::chmod(n.socket.c_str(), 0666);
  refused = curl_as_nobody({"-X", "POST", "http://localhost/v1/reload"});
  CHECK(refused.exit_code == 0);
  CHECK(contains(refused.out, "status=403"));
  CHECK(contains(refused.out, "mcfgd's own user, root and control.group"));
  auto status = curl_as_nobody({"http://localhost/v1/status"});
  CHECK(contains(status.out, "status=403"));
  CHECK_FALSE(contains(status.out, n.auth));
  CHECK(eventually([&] {
    return contains(read_file(n.mcfgd_err),
                    "refused a request from uid 65534 on unix:" + n.socket);
  }));
  // Nothing was done for it: no write happened, the file is as it was.
  CHECK(n.writes(0) == writes);
  CHECK(read_file(n.auth) == before);
  // The owner (root here) is served on the same socket.
  CHECK(n.call("POST", "/v1/reload").status == 200);
  CHECK(eventually([&] { return n.writes(0) == writes + 1; }));
  CHECK(n.stop() == 0);
  n.check_no_secrets();
}

TEST_CASE("control.group: the socket is 0660 for that group, whose members "
          "are served, and other users still are not") {
  api_node n{"control: {group: nogroup}\n"};
  n.start();
  fs::permissions(n.dir.path, fs::perms::owner_all | fs::perms::others_exec
                                | fs::perms::group_exec);
  auto* nogroup = ::getgrnam("nogroup");
  REQUIRE(nogroup != nullptr);
  struct stat st {};
  REQUIRE(::stat(n.socket.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0660);
  CHECK(st.st_gid == nogroup->gr_gid);
  // nobody, with `group` as primary group and `extra` as the only other.
  auto curl_as = [&](const std::string& group, const std::string& extra = {}) {
    std::vector<std::string> groups = {"--clear-groups"};
    if (!extra.empty())
      groups = {"--groups", extra};
    auto cmd = std::vector<std::string>{"setpriv", "--reuid", "nobody",
                                        "--regid", group};
    cmd.insert(cmd.end(), groups.begin(), groups.end());
    cmd.insert(cmd.end(),
               {"curl", "-sS", "-w", "\nstatus=%{http_code}\n", "--unix-socket",
                n.socket, "http://localhost/healthz"});
    auto r = run(n.dir, cmd);
    n.outputs += r.out + r.err;
    return r;
  };
  auto member = curl_as("nogroup");
  CHECK(member.exit_code == 0);
  CHECK(contains(member.out, "status=200"));
  auto supplementary = curl_as("daemon", "nogroup");
  CHECK(contains(supplementary.out, "status=200"));
  auto other = curl_as("daemon");
  CHECK(other.exit_code == 7); // the socket's mode keeps it out
  ::chmod(n.socket.c_str(), 0666);
  other = curl_as("daemon");
  CHECK(contains(other.out, "status=403")); // and so does SO_PEERCRED
  CHECK(contains(curl_as("daemon", "nogroup").out, "status=200"));
  CHECK(n.stop() == 0);
}

TEST_CASE("every endpoint against a running node and a real memcached") {
  api_node n;
  n.start();
  REQUIRE(n.call("POST", "/v1/sync").status == 200);
  CHECK(eventually([&] { return n.login("alice", alice_pw); }));

  // status: the source, the summary, and (files=all) each file with its
  // figures and refresh; by default only files with a problem: none.
  auto shown = n.get_json("/v1/status");
  CHECK(shown.at("summary").at("files") == 2);
  CHECK(shown.at("summary").at("states").at("idle") == 2);
  CHECK(shown.at("summary").at("with_problems") == 0);
  CHECK(shown.at("summary").at("shown") == "problems");
  CHECK(shown.at("files").empty());
  CHECK(n.call("GET", "/v1/status?files=some").status == 400);
  auto st = n.get_json("/v1/status?files=all");
  CHECK(st.at("summary").at("shown") == "all");
  CHECK(st.at("source").at("path") == n.source);
  CHECK(st.at("source").at("backend") == "file");
  CHECK(st.at("source").at("last_refused").is_null());
  auto version = st.at("source").at("version").get<uint64_t>();
  REQUIRE(st.at("files").size() == 2);
  auto& auth = st.at("files")[0];
  CHECK(auth.at("path") == n.auth);
  CHECK(auth.at("state") == "idle");
  CHECK(auth.at("writes").get<uint64_t>() >= 1);
  CHECK(auth.at("seconds_since_last_write").is_number());
  CHECK(auth.at("module").at("users") == "2");
  CHECK(auth.at("refresh").at("refreshes").get<uint64_t>() >= 1);
  CHECK(st.at("files")[1].at("path") == n.perms);
  CHECK(st.at("files")[1].at("refresh").is_null());

  auto metrics_before = parse_prometheus_text(n.call("GET", "/metrics").body);
  REQUIRE(metrics_before.error.empty());

  // sync: an edit, then one call, and memcached takes the new password.
  write_atomically(n.source, "users:\n  alice: {password: " + alice_pw
                               + "}\n"
                                 "  bob: {password: "
                               + bob_new_pw + "}\n");
  auto synced = n.call("POST", "/v1/sync", "{\"file\": \"" + n.auth + "\"}");
  CHECK(synced.status == 200);
  CHECK(read_file(n.auth)
        == "alice:" + alice_pw + "\nbob:" + bob_new_pw + "\n");
  CHECK(eventually([&] { return n.login("bob", bob_new_pw); }));
  CHECK(try_login(n.memcached->port(), "bob", bob_pw).refused());
  // A version the source has not reached is an error, not a wait.
  auto ahead = n.call("POST", "/v1/sync",
                      "{\"version\": " + std::to_string(version + 100) + "}");
  CHECK(ahead.status == 409);
  CHECK(contains(ahead.body, "not yet " + std::to_string(version + 100)));
  CHECK(n.call("POST", "/v1/sync", "{\"file\": \"/no/such\"}").status == 404);

  // metrics: well-formed, and the counters moved with the edit.
  auto metrics = parse_prometheus_text(n.call("GET", "/metrics").body);
  REQUIRE(metrics.error.empty());
  CHECK(*metrics.value("mcfg_source_version")
        > *metrics_before.value("mcfg_source_version"));
  CHECK(*metrics.value("mcfg_writes_total", n.auth)
        > *metrics_before.value("mcfg_writes_total", n.auth));
  CHECK(*metrics.value("mcfg_refreshes_total", n.auth)
        > *metrics_before.value("mcfg_refreshes_total", n.auth));

  // reload: the file is written again from unchanged state.
  auto writes = n.writes(1);
  CHECK(n.call("POST", "/v1/reload", "{\"file\": \"" + n.perms + "\"}").status
        == 200);
  CHECK(eventually([&] { return n.writes(1) == writes + 1; }));

  // healthz: 503 with the reason while a rename fails, 200 again after.
  CHECK(n.call("GET", "/healthz").status == 200);
  block_with_directory(n.auth);
  write_atomically(n.source, "users:\n  alice: {password: " + alice_pw + "}\n");
  http_reply health;
  CHECK(eventually([&] {
    health = n.call("GET", "/healthz");
    return health.status == 503 && contains(health.body, "Is a directory");
  }));
  CAPTURE(health.body);
  CHECK(contains(health.body, n.auth + ": retrying: rename"));
  auto failed = parse_prometheus_text(n.call("GET", "/metrics").body);
  CHECK(failed.value("mcfg_failed_attempts_total", n.auth) > 0.0);
  fs::remove_all(n.auth);
  CHECK(eventually([&] { return n.call("GET", "/healthz").status == 200; }));
  CHECK(read_file(n.auth) == "alice:" + alice_pw + "\n");

  CHECK(n.stop() == 0);
  n.check_no_secrets();
}

TEST_CASE("mcfgctl: status, sync, reload and health through the socket, "
          "exit codes 0, 1 and 2") {
  api_node n;
  n.start();
  auto synced = n.ctl({"sync"});
  CHECK(synced.exit_code == 0);
  CHECK(contains(synced.out, "in sync:\n  " + n.auth
                               + ": version 1 written "
                                 "and refreshed (no consumer check: not "
                                 "confirmed)\n"));
  auto brief = n.ctl({"status"});
  CHECK(brief.exit_code == 0);
  CHECK(contains(brief.out, "2 files: 2 idle 0 pending 0 retrying; 0 with a "
                            "problem (below; --all for all)"));
  CHECK_FALSE(contains(brief.out, n.auth + "\n  applied version"));
  auto status = n.ctl({"status", "--all"});
  CHECK(status.exit_code == 0);
  CHECK(contains(status.out, n.auth
                               + "\n  applied version 1, confirmed version - "
                                 "(no consumer check), state idle"));
  CHECK(contains(status.out, "refresh " + n.auth + ": done"));
  auto as_json = n.ctl({"status", "--all", "--json"});
  CHECK(as_json.exit_code == 0);
  auto doc = json::parse(as_json.out, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  CHECK(doc.at("files")[0].at("path") == n.auth);
  auto healthy = n.ctl({"health"});
  CHECK(healthy.exit_code == 0);
  CHECK(healthy.out == "healthy\n");
  CHECK(n.ctl({"reload", n.perms}).exit_code == 0);
  // Direct socket, same answers.
  CHECK(run(n.dir, {MCFGCTL, "--socket", n.socket, "sync", n.auth}).exit_code
        == 0);

  auto unknown = n.ctl({"sync", "/no/such/file"});
  CHECK(unknown.exit_code == 1);
  CHECK(contains(unknown.err, "failed (HTTP 404)"));
  CHECK(n.ctl({"sync", "--version", "999999"}).exit_code == 1);
  block_with_directory(n.perms);
  write_atomically(n.source, "users:\n  alice: {password: " + alice_pw + "}\n");
  // Unhealthy at once (the files hold version 1 of 2, an attempt in
  // progress), then retrying once the first rename has failed.
  run_result sick;
  CHECK(eventually([&] {
    sick = n.ctl({"health"});
    return sick.exit_code == 1
           && contains(sick.out, "unhealthy: " + n.perms + ": retrying");
  }));
  CHECK(sick.exit_code == 1);
  CHECK(contains(sick.out, "unhealthy: " + n.perms + ": retrying"));
  fs::remove_all(n.perms);
  CHECK(eventually([&] { return n.ctl({"health"}).exit_code == 0; }));

  for (auto bad :
       std::vector<std::vector<std::string>>{{"shutdown"},
                                             {},
                                             {"status", "extra"},
                                             {"reload", "--version", "3"},
                                             {"sync", "--timeout", "soon"},
                                             {"sync", "--bogus"}}) {
    auto r = n.ctl(bad);
    CAPTURE(r.err);
    CHECK(r.exit_code == 2);
  }
  CHECK(run(n.dir, {MCFGCTL, "status"}).exit_code == 2); // no target
  CHECK(run(n.dir,
            {MCFGCTL, "--socket", n.socket, "--node", "127.0.0.1:1", "status"})
          .exit_code
        == 2);
  CHECK(n.stop() == 0);
  auto gone = run(n.dir,
                  {MCFGCTL, "--socket", n.socket, "--timeout", "2s", "status"});
  CHECK(gone.exit_code == 1);
  CHECK(contains(gone.err, "cannot reach mcfgd at " + n.socket));
  n.check_no_secrets();
}

TEST_CASE("bad clients are answered or dropped, and the node, its files and "
          "other clients are fine") {
  api_node n;
  n.start();
  REQUIRE(n.call("POST", "/v1/sync").status == 200);
  auto before_auth = read_file(n.auth);
  auto before_perms = read_file(n.perms);
  auto writes = n.writes(0);
  auto to = n.local();

  SUBCASE("malformed JSON, unknown paths and methods") {
    CHECK(n.call("POST", "/v1/sync", "{\"file\": ").status == 400);
    CHECK(n.call("POST", "/v1/reload", "[1,2").status == 400);
    CHECK(n.call("POST", "/v1/reload", "{\"file\": 7}").status == 400);
    CHECK(n.call("GET", "/v1/nothing").status == 404);
    CHECK(n.call("GET", "/../../etc/passwd").status == 404);
    CHECK(n.call("DELETE", "/v1/status").status == 405);
    CHECK(n.call("GET", "/v1/reload").status == 405);
    auto garbage = raw_exchange(to, "\x16\x03\x01\x02\x00garbage\r\n\r\n");
    CHECK((garbage.status == 400 || garbage.raw.empty()));
    auto no_version = raw_exchange(to, "GET /healthz\r\n\r\n");
    CHECK(no_version.status != 200);
  }
  SUBCASE("oversized bodies: by Content-Length and chunked") {
    std::string big(200 * 1024, 'x');
    auto by_length = n.call("POST", "/v1/sync", big);
    CHECK((by_length.status == 413 || by_length.raw.empty()));
    auto chunked = raw_exchange(
      to, "POST /v1/sync HTTP/1.1\r\nHost: localhost\r\n"
          "Transfer-Encoding: chunked\r\n\r\n"
          "32000\r\n"
            + std::string(0x32000, '{') + "\r\n0\r\n\r\n");
    CHECK(chunked.status == 413);
    std::string huge_header = "GET /v1/status HTTP/1.1\r\nHost: localhost\r\n"
                              "X-Big: "
                              + std::string(100000, 'a') + "\r\n\r\n";
    auto header = raw_exchange(to, huge_header);
    CHECK(header.status != 200);
  }
  SUBCASE("a client sending one byte per second does not delay others, and "
          "is dropped at the request deadline") {
    http_socket slow{to, 30s};
    REQUIRE(slow.connected());
    auto started = std::chrono::steady_clock::now();
    // A reader waits for the server's answer or its close, and notes when.
    std::atomic<bool> closed{false};
    std::string answer;
    std::chrono::steady_clock::time_point closed_at;
    std::thread reader{[&] {
      answer = slow.receive_all();
      closed_at = std::chrono::steady_clock::now();
      closed = true;
    }};
    auto request = http_request_bytes("GET", "/v1/status");
    for (size_t i = 0; i + 1 < request.size() && !closed; ++i) {
      if (!slow.send(request.substr(i, 1)))
        break;
      // Meanwhile another client is served at once.
      if (i % 4 == 0) {
        auto t0 = std::chrono::steady_clock::now();
        CHECK(n.call("GET", "/healthz").status == 200);
        CHECK(std::chrono::steady_clock::now() - t0 < 1s);
      }
      std::this_thread::sleep_for(1s);
      if (std::chrono::steady_clock::now() - started > 20s)
        break;
    }
    reader.join();
    CHECK(closed);
    CHECK(answer.empty()); // closed without an answer
    // The request deadline is 10 s from accept, looked at every 250 ms.
    CHECK(closed_at - started >= 9s);
    CHECK(closed_at - started < 11s);
    CHECK(eventually([&] {
      return contains(read_file(n.mcfgd_err), "dropped a client whose request "
                                              "did not arrive within 10s");
    }));
  }
  SUBCASE("200 concurrent connections") {
    auto request = http_request_bytes("GET", "/v1/status");
    std::vector<std::unique_ptr<http_socket>> clients;
    for (int i = 0; i < 200; ++i)
      clients.push_back(std::make_unique<http_socket>(to, 15s));
    std::vector<std::thread> readers;
    std::atomic<int> answered{0};
    std::atomic<int> dropped{0};
    for (auto& c : clients)
      readers.emplace_back([&, c = c.get()] {
        auto reply = c->connected() && c->send(request)
                       ? parse_http_reply(c->receive_all())
                       : http_reply{};
        (reply.status == 200 ? answered : dropped)++;
      });
    for (auto& t : readers)
      t.join();
    CHECK(answered + dropped == 200);
    CHECK(answered > 0);
    MESSAGE("answered " << answered.load() << ", dropped " << dropped.load());
  }
  // The node answers (once the server has reaped the connections it
  // closed, which frees their slots), nothing was written, nothing changed.
  CHECK(eventually([&] { return n.call("GET", "/healthz").status == 200; }));
  CHECK(n.writes(0) == writes);
  CHECK(read_file(n.auth) == before_auth);
  CHECK(read_file(n.perms) == before_perms);
  CHECK(process_alive(n.mcfgd->pid()));
  CHECK(n.stop() == 0);
  n.check_no_secrets();
}

TEST_CASE("TCP with a token: none is 401, a wrong one 401, the right one "
          "200, and a refused request changes nothing") {
  auto port = free_loopback_port();
  api_node n{api_node::tcp_control(port)};
  n.write_token();
  n.start();
  CHECK(tcp_listeners_of(n.mcfgd->pid()) == 1);
  http_target tcp{"", port};
  auto none = http_call(tcp, "GET", "/v1/status?files=all");
  CHECK(none.status == 401);
  CHECK(contains(none.headers, "WWW-Authenticate: Bearer"));
  CHECK_FALSE(contains(none.body, n.auth));
  auto wrong = http_call(tcp, "GET", "/v1/status?files=all", "",
                         "tok-3f9a1c0b7f");
  CHECK(wrong.status == 401);
  CHECK_FALSE(contains(wrong.body, n.auth));
  CHECK(
    http_call(tcp, "GET", "/v1/status?files=all", "", token.substr(1)).status
    == 401);
  CHECK(http_call(tcp, "GET", "/v1/status?files=all", "", token + "x").status
        == 401);
  auto right = http_call(tcp, "GET", "/v1/status?files=all", "", token);
  CHECK(right.status == 200);
  CHECK(contains(right.body, n.auth));

  // A refused reload is not done: no write; the accepted one is.
  auto writes = n.writes(1);
  CHECK(http_call(tcp, "POST", "/v1/reload").status == 401);
  CHECK(http_call(tcp, "POST", "/v1/reload", "", "wrong").status == 401);
  CHECK(n.call("POST", "/v1/sync").status == 200);
  CHECK(n.writes(1) == writes);
  CHECK(http_call(tcp, "POST", "/v1/reload", "", token).status == 200);
  CHECK(eventually([&] { return n.writes(1) == writes + 1; }));
  CHECK(contains(read_file(n.mcfgd_err),
                 "refused a request without a token on 127.0.0.1:"
                   + std::to_string(port)));
  CHECK(contains(read_file(n.mcfgd_err), "refused a request with a wrong "
                                         "token"));

  // mcfgctl with the token file, and with a wrong one.
  auto node = "127.0.0.1:" + std::to_string(port);
  auto ok = run(n.dir, {MCFGCTL, "--node", node, "--token-file",
                        n.dir / "token", "status", "--all"});
  CHECK(ok.exit_code == 0);
  CHECK(contains(ok.out, n.auth));
  write_text(n.dir / "other-token", "nope\n");
  ::chmod((n.dir / "other-token").c_str(), 0600);
  auto refused = run(n.dir, {MCFGCTL, "--node", node, "--token-file",
                             n.dir / "other-token", "sync"});
  CHECK(refused.exit_code == 1);
  CHECK(contains(refused.err, "failed (HTTP 401)"));
  n.outputs += ok.out + ok.err + refused.out + refused.err;
  CHECK(n.stop() == 0);
  n.check_no_secrets();
  CHECK_FALSE(contains(read_file(n.mcfgd_err), token));
}

TEST_CASE("the old hole is closed: CAF's protocol on the TCP port reaches no "
          "actor, and no file changes") {
  auto port = free_loopback_port();
  api_node n{api_node::tcp_control(port)};
  n.write_token();
  n.start();
  auto before = read_file(n.auth);
  auto writes = n.writes(0);
  // A CAF 0.17 BASP client handshake: a 40-byte header (operation 1,
  // payload length, the BASP version, empty node and actor ids), then a
  // payload; what mcfgctl 0.1 sent to reach the control actor by name.
  std::string basp(40, '\0');
  basp[0] = 1; // client_handshake
  basp[7] = 16; // payload length (big-endian uint32)
  basp[15] = 3; // BASP version 3 in operation_data
  basp += std::string(16, '\0') + "file1";
  auto reply = raw_exchange({"", port}, basp, 10s);
  CAPTURE(reply.raw);
  // No BASP server handshake comes back: HTTP's own refusal, or nothing.
  CHECK((reply.status == 400 || reply.raw.empty()));
  CHECK(reply.raw.find('\0') == std::string::npos);
  auto junk = raw_exchange({"", port}, std::string(4096, '\xff'), 10s);
  CHECK((junk.status == 400 || junk.raw.empty()));
  CHECK(n.call("GET", "/healthz").status == 200);
  CHECK(n.writes(0) == writes);
  CHECK(read_file(n.auth) == before);
  CHECK(n.stop() == 0);
}

TEST_CASE("mcfgd refuses an unsafe control section at start with exit 2 "
          "and writes nothing") {
  auto port = free_loopback_port();
  struct bad_case {
    const char* what;
    std::string control;
    mode_t token_mode;
    const char* expected;
  };
  std::vector<bad_case> cases = {
    {"a non-loopback listen without TLS",
     api_node::tcp_control(port, "0.0.0.0"), 0600,
     "control.listen: 0.0.0.0 is not a loopback address: "
     "control.tls is required"},
    {"a listen without a token file",
     "control:\n  listen: \"127.0.0.1:" + std::to_string(port) + "\"\n", 0600,
     "control.listen: requires control.token_file"},
    {"a token file others can read", api_node::tcp_control(port), 0644,
     "readable by others; make it mode 0600"},
    {"a TLS key others can read",
     api_node::tcp_control(port, "127.0.0.1",
                           "  tls: {cert: cert.pem, key: open.pem}\n"),
     0600, "open.pem: readable by others; make it mode 0600"},
    {"a certificate that does not load",
     api_node::tcp_control(port, "127.0.0.1",
                           "  tls: {cert: cert.pem, key: key.pem}\n"),
     0600, "libmicrohttpd could not start"},
  };
  for (auto& c : cases) {
    auto what = std::string{c.what};
    CAPTURE(what);
    api_node n{c.control};
    n.write_token(c.token_mode);
    // PEM files that are no certificate or key.
    for (auto [name, mode] :
         {std::pair{"cert.pem", 0644}, {"key.pem", 0600}, {"open.pem", 0644}}) {
      write_text(n.dir / name, "not PEM\n");
      ::chmod((n.dir / name).c_str(), static_cast<mode_t>(mode));
    }
    auto r = run(n.dir, {MCFGD, "--config", n.node_yaml});
    CAPTURE(r.err);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, c.expected));
    CHECK(contains(r.err, "bad configuration, nothing written"));
    CHECK_FALSE(fs::exists(n.dir / "run"));
    CHECK_FALSE(fs::exists(n.socket));
    CHECK_FALSE(contains(r.err, token));
  }
}

TEST_CASE("a token file that is a symlink or a FIFO is refused at start "
          "with exit 2, without blocking or writing") {
  auto port = free_loopback_port();
  for (auto kind : {"symlink", "fifo"}) {
    CAPTURE(kind);
    api_node n{api_node::tcp_control(port)};
    if (std::string{kind} == "symlink") {
      write_text(n.dir / "real-token", token + "\n");
      ::chmod((n.dir / "real-token").c_str(), 0600);
      REQUIRE(::symlink("real-token", (n.dir / "token").c_str()) == 0);
    } else {
      // Opening a FIFO for reading would wait for a writer forever.
      REQUIRE(::mkfifo((n.dir / "token").c_str(), 0600) == 0);
    }
    auto r = run(n.dir, {MCFGD, "--config", n.node_yaml}, 20s);
    CAPTURE(r.err);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "token file " + n.dir / "token: "));
    CHECK(contains(r.err, std::string{kind} == "symlink"
                            ? "is a symbolic link; name the file itself"
                            : "not a regular file"));
    CHECK(contains(r.err, "bad configuration, nothing written"));
    CHECK_FALSE(fs::exists(n.dir / "run"));
    CHECK_FALSE(fs::exists(n.socket));
    CHECK_FALSE(contains(r.err, token));
  }
}

TEST_CASE("HTTPS: with control.tls a non-loopback listen is served, to "
          "clients that check the certificate and carry the token") {
  auto port = free_loopback_port();
  api_node n{api_node::tcp_control(port, "0.0.0.0",
                                   "  tls: {cert: cert.pem, key: key.pem}\n")};
  n.write_token();
  auto made = run(n.dir,
                  {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                   "-keyout", n.dir / "key.pem", "-out", n.dir / "cert.pem",
                   "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                   "subjectAltName=IP:127.0.0.1"});
  REQUIRE(made.exit_code == 0);
  ::chmod((n.dir / "key.pem").c_str(), 0600);
  n.start();
  auto node = "127.0.0.1:" + std::to_string(port);
  auto ok = run(n.dir,
                {MCFGCTL, "--node", node, "--token-file", n.dir / "token",
                 "--cacert", n.dir / "cert.pem", "sync"});
  CAPTURE(ok.err);
  CHECK(ok.exit_code == 0);
  // Plain HTTP gets no answer from the HTTPS port.
  CHECK(http_call({"", port}, "GET", "/v1/status", "", token).status != 200);
  // Without the certificate to check against, curl refuses the server.
  auto unchecked = run(
    n.dir, {"curl", "-sS", "-H", "Authorization: Bearer " + token,
            "https://127.0.0.1:" + std::to_string(port) + "/v1/status"});
  CHECK(unchecked.exit_code == 60); // peer certificate cannot be verified
  auto checked = run(
    n.dir, {"curl", "-sS", "--cacert", n.dir / "cert.pem", "-H",
            "Authorization: Bearer " + token,
            "https://127.0.0.1:" + std::to_string(port) + "/healthz"});
  CHECK(checked.exit_code == 0);
  CHECK(contains(checked.out, "\"healthy\":true"));
  CHECK(n.stop() == 0);
}

TEST_CASE("a flood of refused clients is logged once per kind and counted, "
          "not line by line") {
  auto port = free_loopback_port();
  api_node n{api_node::tcp_control(port)};
  n.write_token();
  n.start();
  http_target tcp{"", port};
  const int flood = 150;
  int answered = 0;
  for (int i = 0; i < flood; ++i) {
    answered += http_call(tcp, "GET", "/v1/status").status == 401;
    answered += http_call(tcp, "POST", "/v1/reload", "", "wrong").status == 401;
  }
  CHECK(answered == 2 * flood);
  // The right token is still served, and refused requests did nothing.
  CHECK(http_call(tcp, "GET", "/v1/status", "", token).status == 200);

  auto where = "on 127.0.0.1:" + std::to_string(port);
  auto count_lines = [&](const std::string& part) {
    std::istringstream lines{read_file(n.mcfgd_err)};
    size_t count = 0;
    for (std::string line; std::getline(lines, line);)
      count += contains(line, part);
    return count;
  };
  // While it runs (well within the 60 s interval): the first of each kind.
  CHECK(count_lines("refused a request without a token " + where) == 1);
  CHECK(count_lines("refused a request with a wrong token " + where) == 1);
  CHECK(count_lines("refused") == 2);

  // At stop the counts are logged, once each: nothing is lost.
  CHECK(n.stop() == 0);
  CHECK(count_lines("refused") == 4);
  CHECK(count_lines(std::to_string(flood - 1)
                    + " more requests refused without a token " + where
                    + " in the last ")
        == 1);
  CHECK(count_lines(std::to_string(flood - 1)
                    + " more requests refused with a wrong token " + where
                    + " in the last ")
        == 1);
  n.check_no_secrets();
}

namespace {

/// A backend whose every call throws, as a bug deep in the node would.
struct throwing_backend : mcfg::control_backend {
  std::atomic<int> calls{0};
  mcfg::result<mcfg::node_status, mcfg::backend_error> status() override {
    ++calls;
    throw std::runtime_error("status broke: Pw-in-exception-1");
  }
  mcfg::result<std::vector<mcfg::file_sync>, mcfg::backend_error>
  sync(const mcfg::control_target&) override {
    ++calls;
    throw std::logic_error("sync broke");
  }
  mcfg::result<void, mcfg::backend_error>
  reload(const mcfg::control_target&) override {
    ++calls;
    throw 42; // not even a std::exception
  }
};

} // namespace

TEST_CASE("an exception while answering is a 500 with a fixed message, and "
          "the server goes on serving") {
  temp_dir dir;
  auto path = dir / "api.sock";
  auto bound = mcfg::listening_socket::bind_unix(path, std::nullopt);
  REQUIRE(bound.ok());
  std::vector<mcfg::control_listener> listeners(1);
  listeners[0].socket = std::move(bound).value();
  throwing_backend backend;
  log_capture logs;
  {
    auto server = mcfg::control_server::start(std::move(listeners), backend);
    REQUIRE(server.ok());
    http_target to{path, 0};
    for (auto [method, route] :
         {std::pair{"GET", "/v1/status"}, std::pair{"GET", "/healthz"},
          std::pair{"POST", "/v1/sync"}, std::pair{"POST", "/v1/reload"}}) {
      CAPTURE(route);
      auto r = http_call(to, method, route);
      CHECK(r.status == 500);
      CHECK(contains(r.body, "internal error"));
      CHECK_FALSE(contains(r.raw, "broke"));
      CHECK_FALSE(contains(r.raw, "Pw-in-exception-1"));
    }
    CHECK(backend.calls == 4);
    // Still serving: a route that needs no backend.
    CHECK(http_call(to, "GET", "/nope").status == 404);
  }
  CHECK_FALSE(logs.contains("Pw-in-exception-1"));
}
