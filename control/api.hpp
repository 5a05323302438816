#pragma once
// The control API's request handling (ARCHITECTURE.md §5 "Control API"),
// without sockets: routing, parsing request bodies, building the JSON
// answers, the health verdict and the Prometheus text. The HTTP server
// (control_server) hands every authorised request to `handle_request`; the
// answers come from a `control_backend` (the node's actors in mcfgd, a fake
// in tests and the fuzz target).
//
//   GET  /v1/status    the source, a summary of the files, every file with
//                      a problem (?files=all: every file) (JSON)
//   POST /v1/sync      {"file": PATH, "version": N}, both optional
//   POST /v1/reload    {"file": PATH}, optional
//   GET  /healthz      200 or 503 with the reasons (JSON)
//   GET  /metrics      Prometheus text format 0.0.4
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "memcached_cfg/messages/node_status.hpp"
#include "memcached_cfg/messages/result.hpp"

namespace mcfg {

struct http_request {
  std::string method;
  /// The path without the query string, e.g. "/v1/status".
  std::string path;
  std::string body;
  /// The `files` query argument (GET /v1/status?files=all); empty when the
  /// request has none.
  std::string files;
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  /// Extra headers, e.g. {"Allow", "POST"}.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Why the backend could not do what was asked: an HTTP status (404 for an
/// unknown file, 504 when the node did not answer in time, ...) and a
/// message that names files and keys, never a value.
struct backend_error {
  int status = 500;
  std::string message;
};

/// A sync or reload request, as parsed from its body.
struct control_target {
  /// Empty: every file.
  std::string file;
  /// The source version the files must hold at least (sync only).
  std::optional<uint64_t> version;
};

/// What the API asks of the node. Implementations may block (the HTTP
/// server calls them from its own threads, never from CAF's workers).
class control_backend {
public:
  virtual ~control_backend() = default;
  virtual result<node_status, backend_error> status() = 0;
  /// Returns once the target's files hold the current (or given) version
  /// and their refresh went through, and for files with a consumer check
  /// once the consumer was shown to enforce it (or the check said no probe
  /// can tell): per file, what the sync waited for.
  virtual result<std::vector<file_sync>, backend_error>
  sync(const control_target& target) = 0;
  virtual result<void, backend_error> reload(const control_target& target) = 0;
};

/// The largest request body the API reads; the server refuses larger ones
/// with 413 before reading them.
constexpr size_t max_request_body = 64 * 1024;

/// Answers one request. Never throws (what the backend or a rendering
/// throws is logged and answered 500 with a fixed message); of the request,
/// an answer repeats only the file it named. Every JSON answer is valid
/// UTF-8 whatever the node's names hold (invalid bytes become U+FFFD).
http_response handle_request(const http_request& req, control_backend& backend);

/// An error answer: {"error": message}.
http_response error_response(int status, const std::string& message);

/// Parses a sync (`with_version`) or reload body: empty, or a JSON object
/// with the optional fields "file" (non-empty string) and "version"
/// (unsigned integer, sync only). The error names the field, never its value.
result<control_target> parse_target(const std::string& body, bool with_version);

/// Which files GET /v1/status lists: those with a problem (the default,
/// short at ten thousand files), or all of them (?files=all).
enum class status_files { problems, all };

/// GET /v1/status's JSON: the source, a summary counting the files (by
/// state, and those with a problem), and the files `shown` asks for.
std::string status_json(const node_status& st,
                        status_files shown = status_files::all);

/// Why the node is not healthy; empty when it is.
std::vector<std::string> health_problems(const node_status& st);

/// Why one file of `st` is not healthy (its part of health_problems);
/// empty when it is. `refresh` is the file's refresh, if it has one.
std::vector<std::string> file_problems(const node_status& st,
                                       const writer_status& f,
                                       const refresh_status* refresh);

/// GET /metrics's text.
std::string metrics_text(const node_status& st);

} // namespace mcfg
