// libFuzzer target: rendering a node's status, health and metrics from any
// node_status contents (control/api.hpp's status_json, health_problems,
// metrics_text, and handle_request's GET answers). Paths, names, errors and
// module fields may hold any bytes: a source saved in Latin-1, an etcd key,
// a cut error text.
//
// Input: bytes decoded with FuzzedDataProvider into a node_status (strings
// of any bytes, counters and durations of any value, zero to four files and
// refreshes).
//
// Properties:
// - nothing throws;
// - status_json parses back as a JSON object with one entry per file, and
//   every text that was valid UTF-8 reads back unchanged;
// - GET /v1/status, /healthz and /metrics answer 200 (or 503 for an
//   unhealthy /healthz); the JSON answers parse to an object, /healthz's
//   "healthy" agrees with health_problems;
// - metrics_text passes the strict Prometheus reader
//   (tests/support/prometheus_text.hpp), is valid UTF-8, and each file's
//   writes_total is read back under its path whenever the path is valid
//   UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>

#include <fuzzer/FuzzedDataProvider.h>
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.hpp"
#include "memcached_cfg/control/api.hpp"
#include "tests/support/prometheus_text.hpp"

namespace {

using json = nlohmann::json;

std::string text(FuzzedDataProvider& in) {
  return in.ConsumeRandomLengthString(256);
}

caf::timespan span(FuzzedDataProvider& in) {
  return caf::timespan{in.ConsumeIntegral<int64_t>()};
}

mcfg::writer_status writer(FuzzedDataProvider& in) {
  mcfg::writer_status w;
  w.path = text(in);
  w.applied_version = in.ConsumeIntegral<uint64_t>();
  w.phase = static_cast<mcfg::writer_phase>(in.ConsumeIntegralInRange(0, 2));
  w.attempts = in.ConsumeIntegral<uint32_t>();
  w.last_error = text(in);
  w.since_last_change = span(in);
  w.since_last_write = span(in);
  w.changes = in.ConsumeIntegral<uint64_t>();
  w.ignored = in.ConsumeIntegral<uint64_t>();
  w.writes = in.ConsumeIntegral<uint64_t>();
  w.failed_attempts = in.ConsumeIntegral<uint64_t>();
  for (int i = in.ConsumeIntegralInRange(0, 3); i > 0; --i) {
    auto key = text(in);
    w.module[key] = text(in);
  }
  w.restarts = in.ConsumeIntegral<uint32_t>();
  w.last_give_up = text(in);
  w.failing_for = span(in);
  // An attempt in an I/O pool: its age (any, negative: none) and step.
  w.attempt_running_for = span(in);
  w.attempt_step = text(in);
  return w;
}

mcfg::refresh_status refresh(FuzzedDataProvider& in,
                             const mcfg::node_status& st) {
  mcfg::refresh_status r;
  // Mostly a file's own path, so the per-file join is exercised too.
  if (!st.files.empty() && in.ConsumeBool())
    r.path = st.files[in.ConsumeIntegralInRange<size_t>(0, st.files.size() - 1)]
               .path;
  else
    r.path = text(in);
  r.pending = in.ConsumeBool();
  r.running = in.ConsumeBool();
  r.failures = in.ConsumeIntegral<uint32_t>();
  r.last_error = text(in);
  r.refreshes = in.ConsumeIntegral<uint64_t>();
  r.next_retry_in = span(in);
  r.version = in.ConsumeIntegral<uint64_t>();
  r.verifies = in.ConsumeBool();
  r.confirmed_version = in.ConsumeIntegral<uint64_t>();
  // Mostly a state the refresher reports, sometimes any bytes.
  static const char* states[] = {"none", "verifying", "confirmed",
                                 "unverifiable", "failed"};
  r.verify_state = in.ConsumeBool()
                     ? std::string{states[in.ConsumeIntegralInRange(0, 4)]}
                     : text(in);
  r.verify_detail = text(in);
  r.verifying_for = span(in);
  return r;
}

mcfg::node_status decode(FuzzedDataProvider& in) {
  mcfg::node_status st;
  st.source.backend = text(in);
  st.source.path = text(in);
  st.source.version = in.ConsumeIntegral<uint64_t>();
  st.source.watching = text(in);
  st.source.last_error = text(in);
  st.source.refused_edits = in.ConsumeIntegral<uint64_t>();
  st.source.unreachable = text(in);
  for (int i = in.ConsumeIntegralInRange(0, 4); i > 0; --i)
    st.files.push_back(writer(in));
  for (int i = in.ConsumeIntegralInRange(0, 4); i > 0; --i)
    st.refreshes.push_back(refresh(in, st));
  return st;
}

struct fixed_node : mcfg::control_backend {
  mcfg::node_status st;
  mcfg::result<mcfg::node_status, mcfg::backend_error> status() override {
    return st;
  }
  mcfg::result<std::vector<mcfg::file_sync>, mcfg::backend_error>
  sync(const mcfg::control_target&) override {
    return std::vector<mcfg::file_sync>{};
  }
  mcfg::result<void, mcfg::backend_error>
  reload(const mcfg::control_target&) override {
    return {};
  }
};

bool valid_utf8(const std::string& x) {
  return mcfg::is_valid_utf8(x);
}

/// A text that was valid UTF-8 reads back unchanged (null for empty where
/// the status says "nothing").
void check_text(const json& field, const std::string& original,
                bool empty_is_null) {
  if (empty_is_null && original.empty()) {
    FUZZ_CHECK(field.is_null());
    return;
  }
  FUZZ_CHECK(field.is_string());
  if (valid_utf8(original))
    FUZZ_CHECK(field.get<std::string>() == original);
}

void check_status(const mcfg::node_status& st) {
  auto doc = json::parse(mcfg::status_json(st), nullptr, false);
  FUZZ_CHECK(!doc.is_discarded() && doc.is_object());
  auto& src = doc["source"];
  check_text(src["path"], st.source.path, false);
  check_text(src["backend"], st.source.backend, false);
  check_text(src["last_refused"], st.source.last_error, true);
  check_text(src["unreachable"], st.source.unreachable, true);
  FUZZ_CHECK(src["version"].get<uint64_t>() == st.source.version);
  auto& files = doc["files"];
  FUZZ_CHECK(files.is_array() && files.size() == st.files.size());
  for (size_t i = 0; i < st.files.size(); ++i) {
    check_text(files[i]["path"], st.files[i].path, false);
    check_text(files[i]["last_error"], st.files[i].last_error, true);
    FUZZ_CHECK(files[i]["module"].is_object());
  }
}

void check_metrics(const mcfg::node_status& st) {
  auto text = mcfg::metrics_text(st);
  FUZZ_CHECK(valid_utf8(text));
  auto m = mcfg::test::parse_prometheus_text(text);
  FUZZ_CHECK(m.error.empty());
  FUZZ_CHECK(m.value("mcfg_source_version")
             == static_cast<double>(st.source.version));
  for (auto& f : st.files)
    if (valid_utf8(f.path) && !f.path.empty())
      FUZZ_CHECK(m.value("mcfg_writes_total", f.path).has_value());
}

void check_answers(const mcfg::node_status& st) {
  fixed_node node;
  node.st = st;
  auto problems = mcfg::health_problems(st);
  for (auto path : {"/v1/status", "/healthz", "/metrics"}) {
    auto res = mcfg::handle_request({"GET", path, "", ""}, node);
    bool health = std::string{path} == "/healthz";
    FUZZ_CHECK(res.status == 200 || (health && res.status == 503));
    if (std::string{path} == "/metrics")
      continue;
    auto doc = json::parse(res.body, nullptr, false);
    FUZZ_CHECK(!doc.is_discarded() && doc.is_object());
    if (health) {
      FUZZ_CHECK(doc["healthy"].get<bool>() == problems.empty());
      FUZZ_CHECK(doc["problems"].size() == problems.size());
      FUZZ_CHECK(res.status == (problems.empty() ? 200 : 503));
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in{data, size};
  auto st = decode(in);
  check_status(st);
  check_metrics(st);
  check_answers(st);
  return 0;
}
