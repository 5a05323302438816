// mcfgctl: the control API's client (HTTP/JSON over libcurl).
//
//   mcfgctl [--config node.yaml | --socket PATH
//            | --node HOST:PORT --token-file F [--cacert PEM]]
//           [--timeout 30s] COMMAND
//   COMMAND: status [--json] | sync [FILE] [--version N] | reload [FILE]
//            | health [--json]
//
// Exit codes: 0 done (health: healthy); 1 the node answered with an error
// (health: unhealthy), or could not be reached in time; 2 bad usage.
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <variant>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "node/control_api.hpp"
#include "node/node_config.hpp"

namespace {

using json = nlohmann::json;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

struct options {
  std::string config;
  std::string socket;
  std::optional<mcfg::listen_address> node;
  std::string token_file;
  std::string cacert;
  caf::timespan timeout = std::chrono::seconds(30);
  bool json = false;
  std::string command;
  std::string file;
  std::optional<uint64_t> version;
};

void usage(std::ostream& out) {
  out << "usage: mcfgctl [--config node.yaml | --socket PATH |\n"
         "                --node HOST:PORT --token-file FILE [--cacert PEM]]\n"
         "               [--timeout 30s] COMMAND\n"
         "  status [--json]          the source, every file, every refresh\n"
         "  sync [FILE] [--version N]  wait until the files hold the source\n"
         "  reload [FILE]            re-read the source, rewrite the files\n"
         "  health [--json]          exit 0 when healthy, 1 with the reasons\n";
}

/// The usage error, printed; always nullopt.
std::nullopt_t bad(const std::string& what) {
  std::cerr << "mcfgctl: " << what << '\n';
  return std::nullopt;
}

std::optional<options> check(options opts) {
  int targets = !opts.config.empty() + !opts.socket.empty()
                + opts.node.has_value();
  if (targets != 1)
    return bad("give exactly one of --config, --socket, --node");
  if (opts.node.has_value() != !opts.token_file.empty())
    return bad("--node and --token-file go together");
  if (!opts.cacert.empty() && !opts.node)
    return bad("--cacert is for --node");
  static const char* commands[] = {"status", "sync", "reload", "health"};
  if (std::find(std::begin(commands), std::end(commands), opts.command)
      == std::end(commands))
    return bad(opts.command.empty() ? "no command given"
                                    : "unknown command '" + opts.command + "'");
  bool takes_file = opts.command == "sync" || opts.command == "reload";
  if (!takes_file && !opts.file.empty())
    return bad(opts.command + " takes no file");
  if (opts.version && opts.command != "sync")
    return bad("--version is for sync");
  if (opts.json && opts.command != "status" && opts.command != "health")
    return bad("--json is for status and health");
  return opts;
}

std::optional<options> parse_args(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool takes_value = arg == "--config" || arg == "--socket"
                       || arg == "--node" || arg == "--token-file"
                       || arg == "--cacert" || arg == "--timeout"
                       || arg == "--version";
    if (takes_value && i + 1 >= argc)
      return bad(arg + " needs a value");
    std::string value = takes_value ? argv[++i] : "";
    if (arg == "--config") {
      opts.config = value;
    } else if (arg == "--socket") {
      opts.socket = value;
    } else if (arg == "--node") {
      opts.node = mcfg::parse_listen_address(value);
      if (!opts.node)
        return bad("--node wants HOST:PORT, got '" + value + "'");
    } else if (arg == "--token-file") {
      opts.token_file = value;
    } else if (arg == "--cacert") {
      opts.cacert = value;
    } else if (arg == "--timeout") {
      auto d = mcfg::parse_duration(value);
      if (!d || d->count() == 0)
        return bad("--timeout wants a duration like 30s, got '" + value + "'");
      opts.timeout = *d;
    } else if (arg == "--version") {
      char* end = nullptr;
      errno = 0;
      auto n = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || value[0] == '-')
        return bad("--version wants an unsigned integer, got '" + value + "'");
      opts.version = n;
    } else if (arg == "--json") {
      opts.json = true;
    } else if (arg == "--help" || arg == "-h") {
      usage(std::cout);
      std::exit(exit_ok);
    } else if (!arg.empty() && arg[0] == '-') {
      return bad("unknown option '" + arg + "'");
    } else if (opts.command.empty()) {
      opts.command = arg;
    } else if (opts.file.empty()) {
      opts.file = arg;
    } else {
      return bad("unexpected argument '" + arg + "'");
    }
  }
  return check(std::move(opts));
}

/// Where and how to reach the node.
struct endpoint {
  std::string base_url;
  std::string unix_socket;
  std::string token;
  std::string cacert;
  std::string name; ///< for messages
};

std::variant<endpoint, std::string> resolve(const options& opts) {
  endpoint out;
  if (opts.node) {
    auto host = opts.node->host;
    if (host.find(':') != std::string::npos)
      host = "[" + host + "]";
    auto scheme = opts.cacert.empty() ? "http://" : "https://";
    out.base_url = scheme + host + ":" + std::to_string(opts.node->port);
    out.name = opts.node->host + ":" + std::to_string(opts.node->port);
    auto token = mcfg::read_token_file(opts.token_file);
    if (token.index() == 1)
      return std::get<1>(token);
    out.token = std::get<0>(token);
    out.cacert = opts.cacert;
    return out;
  }
  out.base_url = "http://localhost";
  out.unix_socket = opts.socket;
  if (!opts.config.empty()) {
    auto loaded = mcfg::load_node_config(opts.config);
    if (!loaded.ok())
      return loaded.errors.front().to_string();
    out.unix_socket = loaded.value->control.socket;
  }
  out.name = out.unix_socket;
  return out;
}

struct reply {
  long status = 0;
  std::string body;
};

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

/// One request; the transport's error text when there was no answer.
std::variant<reply, std::string> call(const endpoint& to, const options& opts,
                                      const std::string& method,
                                      const std::string& path,
                                      const std::string& body) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl{curl_easy_init(),
                                                           curl_easy_cleanup};
  if (!curl)
    return std::string{"libcurl could not start"};
  auto* h = curl.get();
  reply out;
  auto url = to.base_url + path;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  if (!to.unix_socket.empty())
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, to.unix_socket.c_str());
  if (!to.cacert.empty())
    curl_easy_setopt(h, CURLOPT_CAINFO, to.cacert.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(
                     std::chrono::duration_cast<std::chrono::milliseconds>(
                       opts.timeout)
                       .count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &out.body);
  curl_slist* headers = nullptr;
  std::string auth = "Authorization: Bearer " + to.token;
  if (!to.token.empty())
    headers = curl_slist_append(headers, auth.c_str());
  if (method == "POST") {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  auto rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK)
    return std::string{curl_easy_strerror(rc)};
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
  return out;
}

std::string seconds(const json& x) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << x.get<double>() << "s";
  return out.str();
}

/// "12.5s ago", or "never" for null.
std::string age(const json& x) {
  return x.is_number() ? seconds(x) + " ago" : "never";
}

std::string text(const json& x) {
  return x.is_string() ? x.get<std::string>() : x.dump();
}

void print_status(const json& st) {
  auto& src = st.at("source");
  std::cout << "source " << text(src.at("path")) << "  version "
            << src.at("version") << "  (" << text(src.at("watching")) << ")";
  if (src.at("last_refused").is_string())
    std::cout << "  (edit refused: " << text(src.at("last_refused")) << ")";
  std::cout << "\n\n";
  for (auto& f : st.at("files")) {
    std::cout << text(f.at("path")) << "\n  applied version "
              << f.at("applied_version") << ", state " << text(f.at("state"))
              << ", attempts " << f.at("attempts") << ", writes "
              << f.at("writes") << ", last write "
              << age(f.at("seconds_since_last_write")) << ", last change "
              << age(f.at("seconds_since_last_change")) << "\n";
    if (f.at("last_error").is_string())
      std::cout << "  last error: " << text(f.at("last_error")) << "\n";
    if (f.at("restarts").get<uint64_t>() > 0)
      std::cout << "  FAULT: failing for "
                << (f.at("seconds_failing").is_number()
                      ? seconds(f.at("seconds_failing"))
                      : std::string{"-"})
                << ", " << f.at("restarts") << " restarts; "
                << text(f.at("last_give_up")) << "\n";
    for (auto& [key, value] : f.at("module").items())
      std::cout << "  " << key << ": " << text(value) << "\n";
  }
  for (auto& f : st.at("files")) {
    auto& r = f.at("refresh");
    if (!r.is_object())
      continue;
    std::cout << "refresh " << text(f.at("path")) << ": "
              << (r.at("running").get<bool>()   ? "running"
                  : r.at("pending").get<bool>() ? "pending"
                                                : "done")
              << ", " << r.at("refreshes") << " refreshes";
    if (r.at("consecutive_failures").get<uint64_t>() > 0)
      std::cout << ", " << r.at("consecutive_failures")
                << " failures: " << text(r.at("last_error"));
    if (r.at("seconds_to_next_retry").is_number())
      std::cout << "; next retry in " << seconds(r.at("seconds_to_next_retry"));
    std::cout << "\n";
  }
}

/// The command's request: method, path, body.
struct request {
  std::string method;
  std::string path;
  std::string body;
};

request request_for(const options& opts) {
  if (opts.command == "status")
    return {"GET", "/v1/status", ""};
  if (opts.command == "health")
    return {"GET", "/healthz", ""};
  json body = json::object();
  if (!opts.file.empty())
    body["file"] = opts.file;
  if (opts.version)
    body["version"] = *opts.version;
  return {"POST", "/v1/" + opts.command, body.dump()};
}

/// Prints what the node answered; the exit code.
int show(const options& opts, const reply& r) {
  auto doc = json::parse(r.body, nullptr, false);
  bool ok = r.status >= 200 && r.status < 300;
  if (opts.json) {
    std::cout << r.body;
    return ok ? exit_ok : exit_failed;
  }
  if (doc.is_discarded() || !doc.is_object()) {
    std::cerr << "mcfgctl: " << opts.command << ": HTTP " << r.status
              << " with a body that is no JSON object\n";
    return exit_failed;
  }
  try {
    if (opts.command == "health") {
      if (ok)
        std::cout << "healthy\n";
      for (auto& p : doc.at("problems"))
        std::cout << "unhealthy: " << text(p) << "\n";
      return ok ? exit_ok : exit_failed;
    }
    if (!ok) {
      std::cerr << "mcfgctl: " << opts.command << " failed (HTTP " << r.status
                << "): " << text(doc.value("error", json("no message")))
                << '\n';
      return exit_failed;
    }
    if (opts.command == "status")
      print_status(doc);
    else if (opts.command == "sync")
      std::cout << "in sync: "
                << (opts.file.empty() ? "every file" : opts.file)
                << " reflects the current source and was refreshed\n";
    else
      std::cout << "reload requested\n";
  } catch (const json::exception& e) {
    std::cerr << "mcfgctl: " << opts.command
              << ": unexpected answer: " << e.what() << '\n';
    return exit_failed;
  }
  return exit_ok;
}

} // namespace

int main(int argc, char** argv) {
  auto opts = parse_args(argc, argv);
  if (!opts) {
    usage(std::cerr);
    return exit_usage;
  }
  auto to = resolve(*opts);
  if (auto err = std::get_if<std::string>(&to)) {
    std::cerr << "mcfgctl: " << *err << '\n';
    return exit_usage;
  }
  auto& where = std::get<endpoint>(to);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  auto req = request_for(*opts);
  auto answer = call(where, *opts, req.method, req.path, req.body);
  int rc = exit_failed;
  if (auto err = std::get_if<std::string>(&answer))
    std::cerr << "mcfgctl: cannot reach mcfgd at " << where.name << ": "
              << *err << '\n';
  else
    rc = show(*opts, std::get<reply>(answer));
  curl_global_cleanup();
  return rc;
}
