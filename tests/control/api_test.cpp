// The control API's request handling without sockets: routing, bodies, the
// status JSON, the health verdict, the Prometheus text; the token file and
// the helpers of the HTTP server.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "memcached_cfg/control/api.hpp"
#include "memcached_cfg/control/server.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/private_file.hpp"
#include "support/log_capture.hpp"
#include "support/prometheus_text.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;
using json = nlohmann::json;

namespace {

/// Answers from fixed data and records what it was asked.
struct fake_backend : control_backend {
  node_status st;
  std::optional<backend_error> failure;
  std::vector<std::string> calls;
  std::vector<control_target> targets;

  result<node_status, backend_error> status() override {
    calls.push_back("status");
    if (failure)
      return *failure;
    return st;
  }
  /// What sync answers per file.
  std::vector<file_sync> synced;
  result<std::vector<file_sync>, backend_error>
  sync(const control_target& t) override {
    calls.push_back("sync");
    targets.push_back(t);
    if (failure)
      return *failure;
    return synced;
  }
  result<void, backend_error> reload(const control_target& t) override {
    calls.push_back("reload");
    targets.push_back(t);
    if (failure)
      return *failure;
    return {};
  }
};

/// A node of two files: the auth file written and refreshed, the
/// permissions file never written.
node_status two_files() {
  node_status st;
  st.source.path = "/etc/mcfg/cluster.yaml";
  st.source.version = 7;
  st.source.watching = "inotify";
  writer_status auth;
  auth.path = "/run/memcached.auth";
  auth.applied_version = 7;
  auth.writes = 3;
  auth.failed_attempts = 1;
  auth.changes = 4;
  auth.since_last_write = std::chrono::milliseconds(1500);
  auth.since_last_change = std::chrono::seconds(2);
  auth.module = {{"users", "2"}, {"names", "alice,bob"}};
  // Never written: its writer gave up twice, failing for 25 s.
  writer_status perms;
  perms.path = "/run/permissions.json";
  perms.restarts = 2;
  perms.last_give_up = "gave up writing /run/permissions.json";
  perms.failing_for = std::chrono::seconds(25);
  st.files = {auth, perms};
  refresh_status r;
  r.path = auth.path;
  r.refreshes = 5;
  st.refreshes = {r};
  return st;
}

/// A request as the server hands it over: "?files=X" ends up in `files`.
http_response call(fake_backend& b, std::string method, std::string path,
                   std::string body = {}) {
  std::string files;
  if (auto q = path.find("?files="); q != std::string::npos) {
    files = path.substr(q + 7);
    path.erase(q);
  }
  return handle_request(
    {std::move(method), std::move(path), std::move(body), std::move(files)}, b);
}

json body_of(const http_response& r) {
  auto doc = json::parse(r.body, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  return doc;
}

} // namespace

TEST_CASE("control API: unknown paths are 404 and wrong methods 405 with "
          "Allow, and neither reaches the node") {
  fake_backend b;
  for (auto path : {"/", "/v1", "/v1/status/", "/v2/status", "/V1/STATUS",
                    "/healthz?x", "/v1/shutdown"}) {
    CAPTURE(path);
    auto r = call(b, "GET", path);
    CHECK(r.status == 404);
    CHECK(body_of(r).at("error").is_string());
  }
  struct wrong {
    const char* method;
    const char* path;
    const char* allow;
  };
  for (auto w :
       {wrong{"POST", "/v1/status", "GET"}, wrong{"GET", "/v1/sync", "POST"},
        wrong{"DELETE", "/v1/reload", "POST"}, wrong{"PUT", "/healthz", "GET"},
        wrong{"HEAD", "/metrics", "GET"}}) {
    CAPTURE(w.path);
    auto r = call(b, w.method, w.path);
    CHECK(r.status == 405);
    REQUIRE(r.headers.size() == 1);
    CHECK(r.headers[0]
          == std::make_pair(std::string{"Allow"}, std::string{w.allow}));
  }
  CHECK(b.calls.empty());
}

TEST_CASE("control API: sync and reload take an optional file (and sync a "
          "version) from a JSON body") {
  fake_backend b;
  auto r = call(b, "POST", "/v1/sync", "");
  CHECK(r.status == 200);
  CHECK(body_of(r)
        == json{{"ok", true}, {"file", nullptr}, {"files", json::array()}});
  b.synced = {{"/run/a", sync_basis::confirmed, 12, ""}};
  r = call(b, "POST", "/v1/sync", R"({"file": "/run/a", "version": 12})");
  CHECK(r.status == 200);
  CHECK(body_of(r)
        == json{{"ok", true},
                {"file", "/run/a"},
                {"version", 12},
                {"files",
                 {{{"path", "/run/a"},
                   {"waited_for", "confirmed"},
                   {"version", 12},
                   {"note", nullptr}}}}});
  r = call(b, "POST", "/v1/reload", " \n{\"file\":\"/run/b\"}\n");
  CHECK(r.status == 200);
  CHECK(body_of(r) == json{{"ok", true}, {"file", "/run/b"}});
  REQUIRE(b.calls == std::vector<std::string>{"sync", "sync", "reload"});
  CHECK(b.targets[0].file.empty());
  CHECK_FALSE(b.targets[0].version);
  CHECK(b.targets[1].file == "/run/a");
  CHECK(b.targets[1].version == 12u);
  CHECK(b.targets[2].file == "/run/b");
}

TEST_CASE("control API: a bad body is a 400 naming the field, the node is "
          "not asked, and nothing of the body is echoed") {
  fake_backend b;
  struct bad_case {
    const char* path;
    std::string body;
    const char* expected;
  };
  std::vector<bad_case> cases = {
    {"/v1/sync", "{\"file\": \"secret-Pw-1", "not valid JSON"},
    {"/v1/sync", "secret-Pw-1", "not valid JSON"},
    {"/v1/sync", "[\"secret-Pw-1\"]", "must be a JSON object"},
    {"/v1/sync", "\"secret-Pw-1\"", "must be a JSON object"},
    {"/v1/sync", R"({"secret-Pw-1": 1})", "unknown field"},
    {"/v1/sync", R"({"file": ""})", "\"file\" must be a non-empty string"},
    {"/v1/sync", R"({"file": 3})", "\"file\" must be a non-empty string"},
    {"/v1/sync", R"({"version": -1})", "\"version\" must be an unsigned"},
    {"/v1/sync", R"({"version": 1.5})", "\"version\" must be an unsigned"},
    {"/v1/sync", R"({"version": "3"})", "\"version\" must be an unsigned"},
    {"/v1/reload", R"({"version": 3})", "unknown field"},
    {"/v1/reload", std::string(100, '['), "not valid JSON"},
    {"/v1/sync", std::string("{\"file\":\"a\0b\"", 13), "not valid JSON"},
  };
  for (auto& c : cases) {
    CAPTURE(c.body);
    auto r = call(b, "POST", c.path, c.body);
    CHECK(r.status == 400);
    auto msg = body_of(r).at("error").get<std::string>();
    CHECK(msg.find(c.expected) != std::string::npos);
    CHECK(r.body.find("secret-Pw-1") == std::string::npos);
  }
  CHECK(b.calls.empty());
}

TEST_CASE("control API: the backend's refusal is passed on with its status "
          "and message") {
  fake_backend b;
  b.failure = backend_error{404, "no file named /x is kept by this node"};
  auto r = call(b, "POST", "/v1/sync", R"({"file": "/x"})");
  CHECK(r.status == 404);
  CHECK(body_of(r) == json{{"error", "no file named /x is kept by this node"}});
  b.failure = backend_error{504, "timeout"};
  CHECK(call(b, "GET", "/v1/status").status == 504);
  CHECK(call(b, "GET", "/metrics").status == 504);
  r = call(b, "GET", "/healthz");
  CHECK(r.status == 503);
  CHECK(body_of(r)
        == json{{"healthy", false}, {"problems", json::array({"timeout"})}});
}

TEST_CASE("control API: status lists the source, a summary and only the "
          "files with a problem by default") {
  fake_backend b;
  b.st = two_files();
  for (auto* query : {"", "?files=problems"}) {
    CAPTURE(query);
    auto r = call(b, "GET", std::string{"/v1/status"} + query);
    REQUIRE(r.status == 200);
    auto doc = body_of(r);
    CHECK(doc.at("source").at("version") == 7);
    CHECK(doc.at("summary")
          == json{{"files", 2},
                  {"states", {{"idle", 2}, {"pending", 0}, {"retrying", 0}}},
                  {"with_problems", 1},
                  {"shown", "problems"}});
    // The auth file holds the source's version: not listed. The
    // permissions file holds none and gave up twice.
    REQUIRE(doc.at("files").size() == 1);
    CHECK(doc.at("files")[0].at("path") == "/run/permissions.json");
  }
  auto bad = call(b, "GET", "/v1/status?files=every");
  CHECK(bad.status == 400);
  CHECK(body_of(bad).at("error") == "files= takes \"all\" or \"problems\"");
}

TEST_CASE("control API: status with files=all lists the source, every file "
          "with its figures, and the file's refresh") {
  fake_backend b;
  b.st = two_files();
  auto r = call(b, "GET", "/v1/status?files=all");
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "application/json");
  auto doc = body_of(r);
  CHECK(doc.at("source")
        == json{{"backend", "file"},
                {"path", "/etc/mcfg/cluster.yaml"},
                {"version", 7},
                {"watching", "inotify"},
                {"last_refused", nullptr},
                {"refused_edits", 0},
                {"unreachable", nullptr}});
  auto& files = doc.at("files");
  REQUIRE(files.size() == 2);
  auto& auth = files[0];
  CHECK(auth.at("path") == "/run/memcached.auth");
  CHECK(auth.at("applied_version") == 7);
  CHECK(auth.at("state") == "idle");
  CHECK(auth.at("writes") == 3);
  CHECK(auth.at("failed_attempts") == 1);
  CHECK(auth.at("attempts") == 0);
  CHECK(auth.at("changes") == 4);
  CHECK(auth.at("last_error").is_null());
  CHECK(auth.at("seconds_since_last_write") == 1.5);
  CHECK(auth.at("seconds_since_last_change") == 2.0);
  CHECK(auth.at("module") == json{{"users", "2"}, {"names", "alice,bob"}});
  CHECK(auth.at("restarts") == 0);
  CHECK(auth.at("last_give_up").is_null());
  CHECK(auth.at("seconds_failing").is_null());
  CHECK(auth.at("refresh")
        == json{{"running", false},
                {"pending", false},
                {"refreshes", 5},
                {"consecutive_failures", 0},
                {"last_error", nullptr},
                {"seconds_to_next_retry", nullptr},
                {"verify", nullptr}});
  // No consumer check: written, never said to be confirmed.
  CHECK(auth.at("confirmed_version").is_null());
  auto& perms = files[1];
  CHECK(perms.at("seconds_since_last_write").is_null());
  CHECK(perms.at("applied_version") == 0);
  CHECK(perms.at("restarts") == 2);
  CHECK(perms.at("last_give_up") == "gave up writing /run/permissions.json");
  CHECK(perms.at("seconds_failing") == 25.0);
  CHECK(perms.at("refresh").is_null());
}

TEST_CASE("control API: healthz is 200 when nothing is owed or failing, and "
          "503 naming each problem") {
  fake_backend b;
  b.st = two_files();
  auto gave_up = b.st.files[1];
  b.st.files[1].restarts = 0;
  b.st.files[1].last_give_up.clear();
  b.st.files[1].failing_for = caf::timespan{-1};
  b.st.files[1].applied_version = 7;
  auto r = call(b, "GET", "/healthz");
  CHECK(r.status == 200);
  CHECK(body_of(r) == json{{"healthy", true}, {"problems", json::array()}});

  SUBCASE("a file retrying") {
    b.st.files[1].phase = writer_phase::retrying;
    b.st.files[1].attempts = 4;
    b.st.files[1].last_error = "rename a -> b failed: Is a directory";
    r = call(b, "GET", "/healthz");
    CHECK(r.status == 503);
    CHECK(body_of(r).at("problems")
          == json::array({"/run/permissions.json: retrying: rename a -> b "
                          "failed: Is a directory"}));
  }
  SUBCASE("an etcd source no member of which answers") {
    b.st.source.backend = "etcd";
    b.st.source.path = "etcd http://127.0.0.1:2379 /memcached_cfg/";
    b.st.source.unreachable = "source unreachable since "
                              "2026-11-28T08:00:00Z: no etcd endpoint answered";
    r = call(b, "GET", "/healthz");
    CHECK(r.status == 503);
    CHECK(body_of(r).at("problems") == json::array({b.st.source.unreachable}));
    auto status = body_of(call(b, "GET", "/v1/status")).at("source");
    CHECK(status.at("backend") == "etcd");
    CHECK(status.at("unreachable") == b.st.source.unreachable);
  }
  SUBCASE("a file whose writer gave up") {
    b.st.files[1] = gave_up;
    r = call(b, "GET", "/healthz");
    CHECK(r.status == 503);
    CHECK(body_of(r).at("problems")
          == json::array({"/run/permissions.json: holds version 0 of 7",
                          "/run/permissions.json: gave up 2 times since its "
                          "last write: gave up writing "
                          "/run/permissions.json"}));
  }
  SUBCASE("a file behind the source (its version refused, or not yet "
          "written)") {
    b.st.files[0].applied_version = 6;
    r = call(b, "GET", "/healthz");
    CHECK(r.status == 503);
    CHECK(body_of(r).at("problems")
          == json::array({"/run/memcached.auth: holds version 6 of 7"}));
  }
  SUBCASE("a file without a live writer") {
    b.st.files[0].last_error = "no live writer (restarting)";
    r = call(b, "GET", "/healthz");
    CHECK(r.status == 503);
    CHECK(body_of(r).at("problems")
          == json::array({"/run/memcached.auth: no live writer (restarting)"}));
  }
  SUBCASE("a refused edit of the source") {
    b.st.source.last_error = "cluster.yaml:3:5: users/b:c: bad name";
    r = call(b, "GET", "/healthz");
    CHECK(r.status == 503);
    CHECK(body_of(r).at("problems")
          == json::array({"source: the last edit was refused: "
                          "cluster.yaml:3:5: users/b:c: bad name"}));
  }
  SUBCASE("a failing refresh") {
    b.st.refreshes[0].failures = 2;
    b.st.refreshes[0].last_error = "no pid in run/memcached.pid";
    r = call(b, "GET", "/healthz");
    CHECK(r.status == 503);
    CHECK(body_of(r).at("problems")
          == json::array({"/run/memcached.auth: refresh failing (2 in a "
                          "row): no pid in run/memcached.pid"}));
  }
}

TEST_CASE("control API: metrics are well-formed Prometheus text with every "
          "figure per file") {
  fake_backend b;
  b.st = two_files();
  auto r = call(b, "GET", "/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "text/plain; version=0.0.4; charset=utf-8");
  auto m = test::parse_prometheus_text(r.body);
  INFO(r.body);
  REQUIRE(m.error.empty());
  CHECK(m.value("mcfg_source_version") == 7.0);
  CHECK(m.value("mcfg_source_refused_edits_total") == 0.0);
  CHECK(m.value("mcfg_writes_total", "/run/memcached.auth") == 3.0);
  CHECK(m.value("mcfg_writes_total", "/run/permissions.json") == 0.0);
  CHECK(m.value("mcfg_failed_attempts_total", "/run/memcached.auth") == 1.0);
  CHECK(m.value("mcfg_pending_attempts", "/run/memcached.auth") == 0.0);
  CHECK(m.value("mcfg_seconds_since_last_write", "/run/memcached.auth") == 1.5);
  // Never written: no sample rather than a made-up age.
  CHECK_FALSE(
    m.value("mcfg_seconds_since_last_write", "/run/permissions.json"));
  CHECK(m.value("mcfg_give_ups", "/run/memcached.auth") == 0.0);
  CHECK(m.value("mcfg_give_ups", "/run/permissions.json") == 2.0);
  CHECK(m.value("mcfg_applied_version", "/run/memcached.auth") == 7.0);
  CHECK(m.value("mcfg_applied_version", "/run/permissions.json") == 0.0);
  CHECK(m.value("mcfg_seconds_failing", "/run/permissions.json") == 25.0);
  CHECK_FALSE(m.value("mcfg_seconds_failing", "/run/memcached.auth"));
  CHECK(m.value("mcfg_refreshes_total", "/run/memcached.auth") == 5.0);
  CHECK(m.value("mcfg_refresh_consecutive_failures", "/run/memcached.auth")
        == 0.0);
  for (auto& s : m.samples)
    CHECK(s.name.rfind("mcfg_", 0) == 0);
  CHECK(m.types.at("mcfg_writes_total") == "counter");
  CHECK(m.types.at("mcfg_source_version") == "gauge");
  // Neither file has a consumer check: no confirmed version is claimed.
  CHECK_FALSE(m.value("mcfg_confirmed_version", "/run/memcached.auth"));
  CHECK_FALSE(m.value("mcfg_confirmed_version", "/run/permissions.json"));
}

namespace {

/// two_files() with a consumer check on the auth file that gave up on
/// version 7 while memcached still enforces version 6.
node_status checked_and_failed() {
  auto st = two_files();
  auto& r = st.refreshes[0];
  r.version = 7;
  r.verifies = true;
  r.confirmed_version = 6;
  r.verify_state = "failed";
  r.verify_detail = "memcached still lets in removed user bob";
  return st;
}

} // namespace

TEST_CASE("control API: a file's consumer check shows in status, healthz "
          "and metrics, naming the user and never a password") {
  fake_backend b;
  b.st = checked_and_failed();
  auto doc = body_of(call(b, "GET", "/v1/status?files=all"));
  auto& auth = doc.at("files")[0];
  CHECK(auth.at("applied_version") == 7);
  CHECK(auth.at("confirmed_version") == 6);
  CHECK(auth.at("refresh").at("verify")
        == json{{"state", "failed"},
                {"version", 7},
                {"detail", "memcached still lets in removed user bob"},
                {"seconds_verifying", nullptr}});
  CHECK(doc.at("files")[1].at("confirmed_version").is_null());
  auto health = call(b, "GET", "/healthz");
  CHECK(health.status == 503);
  CHECK(body_of(health).at("problems")
        == json::array({"/run/memcached.auth: version 7 not confirmed: "
                        "memcached still lets in removed user bob",
                        "/run/permissions.json: holds version 0 of 7",
                        "/run/permissions.json: gave up 2 times since its "
                        "last write: gave up writing /run/permissions.json"}));
  auto m = test::parse_prometheus_text(call(b, "GET", "/metrics").body);
  REQUIRE(m.error.empty());
  CHECK(m.value("mcfg_confirmed_version", "/run/memcached.auth") == 6.0);
  CHECK(m.value("mcfg_verify_failed", "/run/memcached.auth") == 1.0);
  CHECK_FALSE(m.value("mcfg_confirmed_version", "/run/permissions.json"));

  // Confirmed: healthy as far as the auth file goes, and 0 in metrics.
  b.st.refreshes[0].verify_state = "confirmed";
  b.st.refreshes[0].confirmed_version = 7;
  b.st.refreshes[0].verify_detail.clear();
  health = call(b, "GET", "/healthz");
  auto answer = body_of(health); // kept: the loop reads into it
  for (auto& p : answer.at("problems"))
    CHECK(p.get<std::string>().find("memcached.auth") == std::string::npos);
  m = test::parse_prometheus_text(call(b, "GET", "/metrics").body);
  CHECK(m.value("mcfg_verify_failed", "/run/memcached.auth") == 0.0);
  CHECK(m.value("mcfg_confirmed_version", "/run/memcached.auth") == 7.0);
}

TEST_CASE("control API: a file path with quotes, backslashes and newlines "
          "is escaped in metric labels") {
  fake_backend b;
  b.st.files.resize(1);
  b.st.files[0].path = "/run/a \"b\"\\c\nd";
  b.st.files[0].writes = 9;
  auto m = test::parse_prometheus_text(call(b, "GET", "/metrics").body);
  REQUIRE(m.error.empty());
  CHECK(m.value("mcfg_writes_total", "/run/a \"b\"\\c\nd") == 9.0);
}

TEST_CASE("the strict Prometheus reader refuses what a scraper would") {
  for (auto bad : {"mcfg_x 1", "# TYPE mcfg_x gauge\nmcfg_x one\n",
                   "mcfg_x 1\n", "# TYPE mcfg_x counter\nmcfg_x 1\n",
                   "# TYPE mcfg_x gauge\nmcfg_x{file=\"a} 1\n",
                   "# TYPE mcfg_x gauge\nmcfg_x{file=\"a\\q\"} 1\n",
                   "# TYPE mcfg_x gauge\n# TYPE mcfg_x gauge\n",
                   "# TYPE mcfg_x gauge\nmcfg_y 1\n", "\n"}) {
    CAPTURE(std::string{bad});
    CHECK_FALSE(test::parse_prometheus_text(bad).error.empty());
  }
  CHECK(test::parse_prometheus_text("").error.empty());
}

TEST_CASE("a token file must be 0600, not empty, one word, and its token is "
          "read without surrounding whitespace") {
  test::temp_dir dir;
  auto path = dir / "token";
  auto with = [&](const std::string& text, mode_t mode) {
    test::write_text(path, text);
    ::chmod(path.c_str(), mode);
    return read_token_file(path);
  };
  auto token = with("  s3cret-token\n", 0600);
  REQUIRE(token.ok());
  CHECK(*token == "s3cret-token");
  CHECK(with("s3cret-token", 0400).ok());
  auto expect_error = [](const result<std::string>& x,
                         const std::string& needle) {
    REQUIRE_FALSE(x.ok());
    CHECK(x.error().message.find(needle) != std::string::npos);
    CHECK(x.error().message.find("s3cret") == std::string::npos);
  };
  expect_error(with("s3cret-token\n", 0640), "make it mode 0600");
  expect_error(with("s3cret-token\n", 0604), "make it mode 0600");
  expect_error(with(" \n", 0600), "empty");
  expect_error(with("s3cret token\n", 0600), "one word");
  expect_error(read_token_file(dir / "missing"), "No such file");
  expect_error(read_token_file(dir.path.string()), "not a regular file");
}

TEST_CASE("tokens compare equal exactly when they are, and loopback hosts are "
          "the 127/8 and ::1 addresses and localhost") {
  CHECK(equal_constant_time("Bearer abc", "Bearer abc"));
  CHECK_FALSE(equal_constant_time("Bearer abc", "Bearer abd"));
  CHECK_FALSE(equal_constant_time("Bearer abc", "Bearer ab"));
  CHECK_FALSE(equal_constant_time("Bearer ab", "Bearer abc"));
  CHECK_FALSE(equal_constant_time("", "x"));
  CHECK(equal_constant_time("", ""));
  for (auto host : {"127.0.0.1", "127.1.2.3", "::1", "localhost"})
    CHECK(is_loopback_host(host));
  for (auto host : {"0.0.0.0", "10.0.0.1", "::", "128.0.0.1", "example.com",
                    "localhost.example.com", "::ffff:127.0.0.1"})
    CHECK_FALSE(is_loopback_host(host));
}

namespace {

/// "\xEF\xBF\xBD": U+FFFD, what a byte that is not UTF-8 is shown as.
const std::string replacement = "\xef\xbf\xbd";

/// A node whose every text holds a Latin-1 byte (0xE9), as a source or an
/// etcd key saved in Latin-1 makes it.
node_status latin1_everywhere() {
  node_status st;
  st.source.backend = "etcd";
  st.source.path = "etcd http://127.0.0.1:2379 /caf\xe9/";
  st.source.version = 4;
  st.source.watching = "etcd watch";
  st.source.last_error = "etcd /caf\xe9/users/jos\xe9 at revision 9: users/"
                         "jos\xe9: refused";
  st.source.unreachable = "source unreachable since 2026: caf\xe9";
  writer_status f;
  f.path = "/run/m\xe9.auth";
  f.applied_version = 4;
  f.writes = 2;
  f.last_error = "cannot write /run/m\xe9.auth";
  f.module = {{"names", "jos\xe9"}, {"k\xe9y", "v"}};
  st.files = {f};
  refresh_status r;
  r.path = f.path;
  r.failures = 1;
  r.last_error = "kill: pid\xe9";
  st.refreshes = {r};
  return st;
}

/// A node that throws, with a secret in the exception's text.
struct throwing_backend : control_backend {
  result<node_status, backend_error> status() override {
    throw std::runtime_error("hunter2");
  }
  result<std::vector<file_sync>, backend_error>
  sync(const control_target&) override {
    throw std::runtime_error("hunter2");
  }
  result<void, backend_error> reload(const control_target&) override {
    throw 42;
  }
};

} // namespace

TEST_CASE("control API: status and healthz are well-formed JSON when every "
          "name and error holds a byte that is not UTF-8") {
  fake_backend b;
  b.st = latin1_everywhere();
  http_response r;
  REQUIRE_NOTHROW(r = call(b, "GET", "/v1/status"));
  REQUIRE(r.status == 200);
  auto doc = body_of(r);
  CHECK(doc["source"]["path"]
        == "etcd http://127.0.0.1:2379 /caf" + replacement + "/");
  CHECK(doc["source"]["last_refused"].get<std::string>().find(
          "users/jos" + replacement + ": refused")
        != std::string::npos);
  auto& file = doc["files"][0];
  CHECK(file["path"] == "/run/m" + replacement + ".auth");
  CHECK(file["last_error"] == "cannot write /run/m" + replacement + ".auth");
  CHECK(file["module"]["names"] == "jos" + replacement);
  CHECK(file["module"].contains("k" + replacement + "y"));
  CHECK(file["refresh"]["last_error"] == "kill: pid" + replacement);
  // Nothing but the bad bytes changed: the count and the version are there.
  CHECK(file["writes"] == 2);
  CHECK(doc["source"]["version"] == 4);

  REQUIRE_NOTHROW(r = call(b, "GET", "/healthz"));
  CHECK(r.status == 503);
  auto health = body_of(r);
  CHECK(health["healthy"] == false);
  CHECK(health["problems"].size() == health_problems(b.st).size());
  CHECK(health["problems"][0].get<std::string>().find(replacement)
        != std::string::npos);
}

TEST_CASE("control API: metrics stay valid UTF-8 Prometheus text when a "
          "path holds a byte that is not UTF-8") {
  fake_backend b;
  b.st = latin1_everywhere();
  auto r = call(b, "GET", "/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.body.find('\xe9') == std::string::npos);
  auto m = test::parse_prometheus_text(r.body);
  INFO(r.body);
  REQUIRE(m.error.empty());
  CHECK(m.value("mcfg_writes_total", "/run/m" + replacement + ".auth") == 2.0);
  CHECK(m.value("mcfg_refresh_consecutive_failures",
                "/run/m" + replacement + ".auth")
        == 1.0);
}

TEST_CASE("control API: an exception from the node is a 500 with a fixed "
          "message, and nothing of it is shown") {
  throwing_backend b;
  test::log_capture logs;
  for (auto [method, path] :
       {std::pair{"GET", "/v1/status"}, std::pair{"GET", "/healthz"},
        std::pair{"GET", "/metrics"}, std::pair{"POST", "/v1/sync"},
        std::pair{"POST", "/v1/reload"}}) {
    CAPTURE(path);
    http_response r;
    REQUIRE_NOTHROW(r = handle_request({method, path, "", ""}, b));
    CHECK(r.status == 500);
    CHECK(r.content_type == "application/json");
    auto doc = body_of(r);
    CHECK(doc["error"] == "internal error while answering the request");
    CHECK(r.body.find("hunter2") == std::string::npos);
  }
  // One error line per request, naming the exception's type, not its text.
  CHECK(logs.lines.size() == 5);
  CHECK(logs.count("answering a request failed: unexpected exception "
                   "std::runtime_error")
        == 4);
  CHECK(logs.count("answering a request failed: unexpected exception of "
                   "unknown type")
        == 1);
  CHECK(logs.count("hunter2") == 0);
}
