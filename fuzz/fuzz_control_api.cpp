// libFuzzer target: the control API's request handler (routing, parsing of
// bodies and parameters, the JSON and Prometheus answers), against a fake
// node of two files.
//
// Input: a first line `METHOD PATH[?files=X]`, then the request body.
//
// Properties:
// - every request is answered with 200, 400, 404 or 405 (the fake node
//   knows no other answer); the JSON answers parse to an object, an error
//   answer holds an "error" string, the metrics text passes the strict
//   Prometheus reader;
// - the node is asked exactly when the route and method are right and the
//   body parses; a sync or reload reaches it with the file (and version)
//   the body names, as an independent nlohmann parse reads them;
// - a 400 says one of the handler's fixed messages: nothing of the body is
//   echoed;
// - GET /v1/status counts both files in its summary, and lists both with
//   files=all.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.hpp"
#include "memcached_cfg/control/api.hpp"
#include "tests/support/prometheus_text.hpp"

namespace {

using json = nlohmann::json;

struct fake_node : mcfg::control_backend {
  mcfg::node_status st;
  int calls = 0;
  mcfg::control_target last;

  fake_node() {
    st.source.path = "/etc/mcfg/cluster.yaml";
    st.source.version = 3;
    mcfg::writer_status a;
    a.path = "/run/memcached.auth";
    a.applied_version = 3; // both files hold the source: a healthy node
    a.writes = 2;
    a.module = {{"users", "1"}};
    mcfg::writer_status b;
    b.path = "/run/a \"quoted\"\\path\nx";
    b.applied_version = 3;
    b.since_last_write = std::chrono::seconds(1);
    st.files = {a, b};
  }

  mcfg::result<mcfg::node_status, mcfg::backend_error> status() override {
    return st;
  }
  mcfg::result<void, mcfg::backend_error> act(const mcfg::control_target& t) {
    ++calls;
    last = t;
    if (t.file.empty() || t.file == st.files[0].path
        || t.file == st.files[1].path)
      return {};
    return mcfg::backend_error{404, "no file named " + t.file};
  }
  mcfg::result<std::vector<mcfg::file_sync>, mcfg::backend_error>
  sync(const mcfg::control_target& t) override {
    if (auto done = act(t); !done)
      return done.error();
    return std::vector<mcfg::file_sync>{
      {st.files[0].path, mcfg::sync_basis::confirmed, st.source.version, ""}};
  }
  mcfg::result<void, mcfg::backend_error>
  reload(const mcfg::control_target& t) override {
    return act(t);
  }
};

const std::set<std::string> fixed_400 = {
  "the request body is not valid JSON",
  "the request body must be a JSON object",
  "\"file\" must be a non-empty string (a path from node.yaml)",
  "\"version\" must be an unsigned integer",
  "unknown field; known: \"file\", \"version\"",
  "unknown field; known: \"file\"",
  "files= takes \"all\" or \"problems\"",
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = std::string{mcfg_fuzz::as_text(data, size)};
  auto nl = text.find('\n');
  auto first = text.substr(0, nl);
  mcfg::http_request req;
  auto space = first.find(' ');
  req.method = first.substr(0, space);
  req.path = space == std::string::npos ? "" : first.substr(space + 1);
  req.body = nl == std::string::npos ? "" : text.substr(nl + 1);
  if (auto q = req.path.find("?files="); q != std::string::npos) {
    req.files = req.path.substr(q + 7);
    req.path.erase(q);
  }

  fake_node node;
  auto res = mcfg::handle_request(req, node);
  FUZZ_CHECK(res.status == 200 || res.status == 400 || res.status == 404
             || res.status == 405);
  bool is_metrics = req.path == "/metrics" && req.method == "GET";
  if (is_metrics && res.status == 200) {
    auto m = mcfg::test::parse_prometheus_text(res.body);
    FUZZ_CHECK(m.error.empty());
    FUZZ_CHECK(m.value("mcfg_writes_total", node.st.files[1].path) == 0.0);
  } else {
    FUZZ_CHECK(res.content_type == "application/json");
    auto doc = json::parse(res.body, nullptr, false);
    FUZZ_CHECK(!doc.is_discarded() && doc.is_object());
    if (res.status >= 400)
      FUZZ_CHECK(doc.contains("error") && doc["error"].is_string());
    if (res.status == 400)
      FUZZ_CHECK(fixed_400.count(doc["error"].get<std::string>()) == 1);
    if (req.path == "/v1/status" && res.status == 200) {
      FUZZ_CHECK(doc["summary"]["files"] == 2);
      if (req.files == "all")
        FUZZ_CHECK(doc["files"].size() == 2);
    }
  }

  bool post_target = req.method == "POST"
                     && (req.path == "/v1/sync" || req.path == "/v1/reload");
  FUZZ_CHECK(node.calls == (post_target && res.status != 400 ? 1 : 0));
  if (node.calls == 1) {
    // What the body says, read independently.
    std::string file;
    std::optional<uint64_t> version;
    auto body = json::parse(req.body, nullptr, false);
    if (!body.is_discarded()) {
      FUZZ_CHECK(body.is_object());
      if (body.contains("file"))
        file = body["file"].get<std::string>();
      if (body.contains("version"))
        version = body["version"].get<uint64_t>();
    }
    FUZZ_CHECK(node.last.file == file);
    FUZZ_CHECK(node.last.version == version);
    FUZZ_CHECK(!version || req.path == "/v1/sync");
  }
  return 0;
}
