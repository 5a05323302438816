#include "memcached_cfg/control/api.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "memcached_cfg/messages/duration.hpp"
#include "memcached_cfg/messages/log.hpp"
#include "memcached_cfg/source/etcd_source.hpp"

namespace mcfg {

namespace {

// Fields in the order written: status reads top-down.
using json = nlohmann::ordered_json;

/// Seconds, or nothing for "never" / "not now" (a negative span).
std::optional<double> seconds_of(caf::timespan d) {
  if (d.count() < 0)
    return std::nullopt;
  return std::chrono::duration<double>(d).count();
}

json seconds_or_null(caf::timespan d) {
  auto x = seconds_of(d);
  return x ? json(*x) : json(nullptr);
}

json text_or_null(const std::string& x) {
  return x.empty() ? json(nullptr) : json(x);
}

/// Each file's refresh by path: one look-up per file, not a scan (ten
/// thousand files would make a scan per file quadratic).
class refresh_index {
public:
  explicit refresh_index(const node_status& st) {
    for (auto& r : st.refreshes)
      by_path_.emplace(r.path, &r);
  }
  const refresh_status* of(const std::string& path) const {
    auto i = by_path_.find(path);
    return i == by_path_.end() ? nullptr : i->second;
  }

private:
  std::unordered_map<std::string, const refresh_status*> by_path_;
};

/// The consumer check's state, or null for a file without one.
json verify_json(const refresh_status& r) {
  if (!r.verifies)
    return nullptr;
  return {{"state", r.verify_state},
          {"version", r.version},
          {"detail", text_or_null(r.verify_detail)},
          {"seconds_verifying", seconds_or_null(r.verifying_for)}};
}

json refresh_json(const refresh_status& r) {
  return {{"running", r.running},
          {"pending", r.pending},
          {"refreshes", r.refreshes},
          {"consecutive_failures", r.failures},
          {"last_error", text_or_null(r.last_error)},
          {"seconds_to_next_retry", seconds_or_null(r.next_retry_in)},
          {"verify", verify_json(r)}};
}

/// The version the file's consumer was shown to enforce; null for a file
/// without a consumer check (written, not confirmed).
json confirmed_json(const refresh_status* r) {
  if (!r || !r->verifies)
    return nullptr;
  return r->confirmed_version;
}

/// A writer's attempt running in its I/O pool: the step and for how long;
/// null when none runs.
json attempt_json(const writer_status& f) {
  if (f.attempt_running_for.count() < 0)
    return nullptr;
  return {{"step", f.attempt_step},
          {"seconds", seconds_or_null(f.attempt_running_for)}};
}

json file_json(const writer_status& f, const refresh_status* r) {
  json out = {{"path", f.path},
              {"applied_version", f.applied_version},
              {"confirmed_version", confirmed_json(r)},
              {"state", to_string(f.phase)},
              {"attempts", f.attempts},
              {"writes", f.writes},
              {"failed_attempts", f.failed_attempts},
              {"changes", f.changes},
              {"ignored", f.ignored},
              {"last_error", text_or_null(f.last_error)},
              {"seconds_since_last_write", seconds_or_null(f.since_last_write)},
              {"seconds_since_last_change",
               seconds_or_null(f.since_last_change)},
              {"restarts", f.restarts},
              {"last_give_up", text_or_null(f.last_give_up)},
              {"seconds_failing", seconds_or_null(f.failing_for)},
              {"attempt_in_progress", attempt_json(f)},
              {"module", f.module}};
  if (r)
    out["refresh"] = refresh_json(*r);
  else
    out["refresh"] = nullptr;
  return out;
}

/// Every JSON the API answers with: a path, name or error text may hold
/// any bytes (a source saved in Latin-1, an etcd key), and nlohmann's
/// default dump() throws on invalid UTF-8; such bytes become U+FFFD.
std::string dump(const json& x, int indent = -1) {
  return x.dump(indent, ' ', false, json::error_handler_t::replace);
}

/// `x` as valid UTF-8: each invalid byte replaced by U+FFFD, as dump()
/// does. (Read back from dump's own output, so both agree on what is
/// valid.)
std::string valid_utf8(const std::string& x) {
  auto back = json::parse(dump(json(x)), nullptr, false);
  return back.is_string() ? back.get<std::string>() : std::string{};
}

/// A label value in Prometheus text: valid UTF-8 (the text format's
/// encoding), with backslash, quote and newline escaped.
std::string label(const std::string& raw) {
  std::string out;
  for (char c : valid_utf8(raw)) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

/// Appends one metric family: HELP, TYPE, then a sample per file.
class metric_writer {
public:
  explicit metric_writer(std::string& out) : out_(out) {
  }

  void family(const char* name, const char* type, const char* help) {
    name_ = name;
    out_ += std::string{"# HELP "} + name + ' ' + help + '\n';
    out_ += std::string{"# TYPE "} + name + ' ' + type + '\n';
  }

  void sample(double value) {
    out_ += name_ + ' ' + number(value) + '\n';
  }

  void sample(const std::string& file, double value) {
    out_ += name_ + "{file=\"" + label(file) + "\"} " + number(value) + '\n';
  }

private:
  static std::string number(double x) {
    // The text format's own spellings; printf's would be "nan" and "inf".
    if (std::isnan(x))
      return "NaN";
    if (std::isinf(x))
      return x > 0 ? "+Inf" : "-Inf";
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", x);
    return buf;
  }

  std::string& out_;
  std::string name_;
};

http_response json_response(int status, const json& body) {
  http_response out;
  out.status = status;
  out.body = dump(body) + '\n';
  return out;
}

http_response from_error(const backend_error& err) {
  return error_response(err.status, err.message);
}

http_response get_status(const http_request& req, control_backend& backend) {
  auto shown = status_files::problems;
  if (req.files == "all")
    shown = status_files::all;
  else if (!req.files.empty() && req.files != "problems")
    return error_response(400, "files= takes \"all\" or \"problems\"");
  auto st = backend.status();
  if (!st)
    return from_error(st.error());
  http_response out;
  out.body = status_json(*st, shown);
  return out;
}

http_response get_health(control_backend& backend) {
  auto st = backend.status();
  if (!st)
    return json_response(503,
                         {{"healthy", false},
                          {"problems", json::array({st.error().message})}});
  auto problems = health_problems(*st);
  return json_response(problems.empty() ? 200 : 503,
                       {{"healthy", problems.empty()}, {"problems", problems}});
}

http_response get_metrics(control_backend& backend) {
  auto st = backend.status();
  if (!st)
    return from_error(st.error());
  http_response out;
  out.content_type = "text/plain; version=0.0.4; charset=utf-8";
  out.body = metrics_text(*st);
  return out;
}

/// What one file's sync waited for, as POST /v1/sync answers it.
json file_sync_json(const file_sync& x) {
  return {{"path", x.path},
          {"waited_for", to_string(x.basis)},
          {"version", x.version},
          {"note", text_or_null(x.note)}};
}

/// POST /v1/sync and /v1/reload. `call` answers the fields the reply adds
/// to {"ok", "file", "version"}.
template <class Call>
http_response post_target(const http_request& req, bool with_version,
                          Call call) {
  auto target = parse_target(req.body, with_version);
  if (!target)
    return error_response(400, target.error().message);
  auto& t = *target;
  auto done = call(t);
  if (!done)
    return from_error(done.error());
  json out = {{"ok", true}, {"file", text_or_null(t.file)}};
  if (t.version)
    out["version"] = *t.version;
  for (auto& [key, value] : done->items())
    out[key] = value;
  return json_response(200, out);
}

struct route {
  const char* path;
  const char* method;
};

constexpr route routes[] = {
  {"/v1/status", "GET"}, {"/v1/sync", "POST"}, {"/v1/reload", "POST"},
  {"/healthz", "GET"},   {"/metrics", "GET"},
};

} // namespace

http_response error_response(int status, const std::string& message) {
  return json_response(status, {{"error", message}});
}

result<control_target> parse_target(const std::string& body,
                                    bool with_version) {
  control_target out;
  if (body.find_first_not_of(" \t\r\n") == std::string::npos)
    return out;
  // No exceptions, and no parser message: nlohmann's would quote the input.
  auto doc = json::parse(body, nullptr, false);
  if (doc.is_discarded())
    return fail("the request body is not valid JSON");
  if (!doc.is_object())
    return fail("the request body must be a JSON object");
  for (auto& [key, value] : doc.items()) {
    if (key == "file") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty())
        return fail("\"file\" must be a non-empty string (a path from "
                    "node.yaml)");
      out.file = value.get<std::string>();
    } else if (key == "version" && with_version) {
      if (!value.is_number_unsigned())
        return fail("\"version\" must be an unsigned integer");
      out.version = value.get<uint64_t>();
    } else {
      // A key is the client's own text: say which fields exist instead.
      return fail(with_version ? "unknown field; known: \"file\", \"version\""
                               : "unknown field; known: \"file\"");
    }
  }
  return out;
}

std::string status_json(const node_status& st, status_files shown) {
  refresh_index refreshes{st};
  json files = json::array();
  size_t with_problems = 0;
  std::map<std::string, size_t> by_state;
  for (auto& f : st.files) {
    auto r = refreshes.of(f.path);
    ++by_state[to_string(f.phase)];
    bool problem = !file_problems(st, f, r).empty();
    with_problems += problem;
    if (problem || shown == status_files::all)
      files.push_back(file_json(f, r));
  }
  json states = json::object();
  for (auto phase :
       {writer_phase::idle, writer_phase::pending, writer_phase::retrying})
    states[to_string(phase)] = by_state[to_string(phase)];
  json out = {{"source",
               {{"backend", st.source.backend},
                {"path", st.source.path},
                {"version", st.source.version},
                {"watching", st.source.watching},
                {"last_refused", text_or_null(st.source.last_error)},
                {"refused_edits", st.source.refused_edits},
                {"unreachable", text_or_null(st.source.unreachable)}}},
              {"summary",
               {{"files", st.files.size()},
                {"states", states},
                {"with_problems", with_problems},
                {"shown", shown == status_files::all ? "all" : "problems"}}},
              {"files", files}};
  return dump(out, 2) + '\n';
}

std::vector<std::string> file_problems(const node_status& st,
                                       const writer_status& f,
                                       const refresh_status* r) {
  std::vector<std::string> out;
  if (f.applied_version < st.source.version)
    out.push_back(f.path + ": holds version "
                  + std::to_string(f.applied_version) + " of "
                  + std::to_string(st.source.version));
  if (f.phase != writer_phase::idle)
    out.push_back(
      f.path + ": " + to_string(f.phase)
      + (f.attempt_running_for.count() < 0
           ? ""
           : ": attempt in progress (" + f.attempt_step + ") for "
               + format_duration(
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                   f.attempt_running_for)))
      + (f.last_error.empty() ? "" : ": " + f.last_error));
  else if (!f.last_error.empty())
    out.push_back(f.path + ": " + f.last_error);
  if (f.restarts > 0)
    out.push_back(f.path + ": gave up " + std::to_string(f.restarts)
                  + " times since its last write: " + f.last_give_up);
  if (r && r->failures > 0)
    out.push_back(f.path + ": refresh failing (" + std::to_string(r->failures)
                  + " in a row): " + r->last_error);
  // Past its timeout the check reports "failed": the consumer may still
  // enforce an older version (e.g. let a removed user in).
  if (r && r->verifies && r->verify_state == "failed")
    out.push_back(f.path + ": version " + std::to_string(r->version)
                  + " not confirmed: " + r->verify_detail);
  return out;
}

std::vector<std::string> health_problems(const node_status& st) {
  std::vector<std::string> out;
  if (!st.source.last_error.empty())
    out.push_back("source: the last edit was refused: " + st.source.last_error);
  // The files keep the last good version meanwhile: still a problem to
  // report, since changes cannot reach them.
  if (!st.source.unreachable.empty())
    out.push_back(st.source.unreachable);
  refresh_index refreshes{st};
  for (auto& f : st.files)
    for (auto& p : file_problems(st, f, refreshes.of(f.path)))
      out.push_back(std::move(p));
  return out;
}

std::string metrics_text(const node_status& st) {
  std::string out;
  metric_writer m{out};
  m.family("mcfg_source_version", "gauge",
           "Version of the source of truth (bumped per accepted edit).");
  m.sample(static_cast<double>(st.source.version));
  m.family("mcfg_source_refused_edits_total", "counter",
           "Edits of the source refused as invalid.");
  m.sample(static_cast<double>(st.source.refused_edits));
  // One family per figure, one sample per file that has it.
  auto per_file = [&](const char* name, const char* type, const char* help,
                      const auto& items, auto value) {
    m.family(name, type, help);
    for (auto& x : items)
      if (auto v = std::optional<double>{value(x)})
        m.sample(x.path, *v);
  };
  using w = const writer_status&;
  using r = const refresh_status&;
  per_file("mcfg_writes_total", "counter",
           "Files renamed into place by the file's current writer.", st.files,
           [](w f) { return static_cast<double>(f.writes); });
  per_file("mcfg_failed_attempts_total", "counter",
           "Failed write attempts of the file's current writer.", st.files,
           [](w f) { return static_cast<double>(f.failed_attempts); });
  per_file("mcfg_pending_attempts", "gauge",
           "Failed attempts since the file's last change (0 when written).",
           st.files, [](w f) { return static_cast<double>(f.attempts); });
  per_file("mcfg_seconds_since_last_write", "gauge",
           "Seconds since the file was last written (absent: never).", st.files,
           [](w f) { return seconds_of(f.since_last_write); });
  per_file("mcfg_give_ups", "gauge",
           "Times the file's writer gave up and was restarted since the file "
           "was last written.",
           st.files, [](w f) { return static_cast<double>(f.restarts); });
  per_file("mcfg_seconds_failing", "gauge",
           "Seconds the file's write attempts have been failing (absent: "
           "the last attempt succeeded).",
           st.files, [](w f) { return seconds_of(f.failing_for); });
  per_file("mcfg_refreshes_total", "counter",
           "Refreshes of the file's consumer that went through.", st.refreshes,
           [](r x) { return static_cast<double>(x.refreshes); });
  per_file("mcfg_refresh_consecutive_failures", "gauge",
           "Failed refreshes of the file's consumer since the last success.",
           st.refreshes, [](r x) { return static_cast<double>(x.failures); });
  per_file("mcfg_applied_version", "gauge",
           "The source version the file holds (0: not written by this "
           "incarnation yet).",
           st.files,
           [](w f) { return static_cast<double>(f.applied_version); });
  std::vector<refresh_status> verified;
  for (auto& x : st.refreshes)
    if (x.verifies)
      verified.push_back(x);
  per_file("mcfg_confirmed_version", "gauge",
           "The newest source version the file's consumer was shown to "
           "enforce (files with a consumer check only; 0: none yet).",
           verified,
           [](r x) { return static_cast<double>(x.confirmed_version); });
  per_file("mcfg_verify_failed", "gauge",
           "1 while the file's consumer check gave up on its version (the "
           "consumer may still enforce an older one), else 0.",
           verified,
           [](r x) { return x.verify_state == "failed" ? 1.0 : 0.0; });
  return out;
}

namespace {

http_response route_request(const http_request& req, control_backend& backend) {
  const route* found = nullptr;
  for (auto& r : routes)
    if (req.path == r.path)
      found = &r;
  if (!found)
    return error_response(404, "no such endpoint; see GET /v1/status, "
                               "POST /v1/sync, POST /v1/reload, GET "
                               "/healthz, GET /metrics");
  if (req.method != found->method) {
    auto out = error_response(405, std::string{"use "} + found->method);
    out.headers.emplace_back("Allow", found->method);
    return out;
  }
  if (req.path == "/v1/status")
    return get_status(req, backend);
  if (req.path == "/healthz")
    return get_health(backend);
  if (req.path == "/metrics")
    return get_metrics(backend);
  if (req.path == "/v1/sync")
    return post_target(
      req, true, [&](const control_target& t) -> result<json, backend_error> {
        auto done = backend.sync(t);
        if (!done)
          return done.error();
        json files = json::array();
        for (auto& f : *done)
          files.push_back(file_sync_json(f));
        return json{{"files", std::move(files)}};
      });
  return post_target(
    req, false, [&](const control_target& t) -> result<json, backend_error> {
      if (auto done = backend.reload(t); !done)
        return done.error();
      return json::object();
    });
}

} // namespace

http_response handle_request(const http_request& req,
                             control_backend& backend) {
  // Called from libmicrohttpd's C callback, which no exception may cross.
  // What the backend or a rendering throws is logged and answered with a
  // 500 and a fixed message (an exception's text may quote what it read;
  // describe_current_exception says only a JSON error's id).
  try {
    return route_request(req, backend);
  } catch (...) {
    log::error("control", "answering a request failed: "
                            + etcd::describe_current_exception());
    http_response out;
    out.status = 500;
    out.body = "{\"error\":\"internal error while answering the request\"}\n";
    return out;
  }
}

} // namespace mcfg
