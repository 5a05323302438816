// mcfgctl: the control API's client (HTTP/JSON over libcurl).
//
//   mcfgctl [--config node.yaml | --socket PATH
//            | --node HOST:PORT --token-file F [--cacert PEM]]
//           [--timeout 30s] COMMAND         (--help says more)
//   COMMAND: status [--json] | sync [FILE] [--version N] | reload [FILE]
//            | health [--json]
//
// and, for a cluster whose source is etcd (programs/cluster_commands.hpp):
//   mcfgctl [--config node.yaml | --endpoints URL[,URL] [--prefix P]
//            [--user U --password-file F] [--cacert CA] [--cert C --key K]]
//           [--timeout 30s] import FILE | export [--show-secrets]
//           | cluster status | sync --cluster [--revision R]
//
// Exit codes: 0 done (health: healthy); 1 the node answered with an error
// (health: unhealthy), or could not be reached in time; 2 bad usage.
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "memcached_cfg/control/api.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/private_file.hpp"
#include "memcached_cfg/programs/cluster_commands.hpp"
#include "memcached_cfg/programs/command_line.hpp"
#include "memcached_cfg/source/etcd_source.hpp"

namespace {

using json = nlohmann::json;

using mcfg::cli::exit_failed;
using mcfg::cli::exit_ok;
using mcfg::cli::exit_usage;

struct options {
  std::string config;
  std::string socket;
  std::optional<mcfg::listen_address> node;
  std::string token_file;
  std::string cacert;
  caf::timespan timeout = std::chrono::seconds(30);
  bool json = false;
  /// status: every file, not only those with a problem.
  bool all_files = false;
  std::string command;
  std::string file;
  std::optional<uint64_t> version;
  /// import, export, cluster status, sync --cluster: etcd, not a node.
  bool cluster = false;
  mcfg::cluster_flags etcd;
  std::optional<int64_t> revision;
  bool show_secrets = false;
};

/// A CLI11 check from a predicate and what to say when it fails.
CLI::Validator wants(bool (*ok)(const std::string&), std::string expected) {
  return CLI::Validator(
    [ok, expected](std::string& x) -> std::string {
      if (ok(x))
        return {};
      return "wants " + expected + ", got '" + x + "'";
    },
    "");
}

/// mcfgctl's command line on CLI11: the options where to connect, then one
/// small function per command declaring that command's options on its own
/// CLI::App. The declarations run in --help's order (CLI11 lists options
/// and commands as declared), and the checks between them after the parse.
class command_line {
public:
  command_line() {
    mcfg::cli::conventions(app_, "mcfgctl",
                           "  0  done (health: the node is healthy)\n"
                           "  1  the node (or etcd) answered with an error "
                           "(health: unhealthy; sync --cluster: a node did "
                           "not converge), or was not reached in time\n"
                           "  2  bad usage");
    declare_target();
    declare_etcd();
    declare_timeout();
    // At most one command; none at all is refused after the parse, so that
    // an unknown word is named as such first ("not expected: frobnicate").
    app_.require_subcommand(0, 1);
    declare_status();
    declare_sync();
    declare_reload();
    declare_health();
    declare_import();
    declare_export();
    declare_cluster();
    app_.callback([this] { check_command(); });
  }

  command_line(const command_line&) = delete;
  command_line& operator=(const command_line&) = delete;

  /// The options argv gives; nothing when main should exit with *code.
  std::optional<options> parse(int argc, char** argv, int& code) {
    if (auto exit_code = mcfg::cli::parse(app_, argc, argv)) {
      code = *exit_code;
      return std::nullopt;
    }
    auto* cmd = app_.get_subcommands().front();
    opts_.command = cmd->get_name();
    opts_.cluster = for_etcd(cmd);
    if (!node_.empty())
      opts_.node = mcfg::parse_listen_address(node_);
    opts_.timeout = *mcfg::parse_duration(timeout_);
    if (version_opt_->count() > 0)
      opts_.version = version_;
    if (revision_opt_->count() > 0)
      opts_.revision = revision_;
    opts_.etcd.config = opts_.config;
    opts_.etcd.cacert = opts_.cacert;
    return opts_;
  }

private:
  /// --config, --socket, --node or --endpoints (exactly one), --token-file
  /// for --node, --cacert for HTTPS.
  void declare_target() {
    auto where = app_.add_option_group(
      "where", "Which node, or which etcd cluster (exactly one):");
    where
      ->add_option("--config", opts_.config,
                   "The node's node.yaml: talk to the socket it names, or "
                   "(cluster commands) to the etcd of its source")
      ->type_name("FILE");
    socket_opt_ = where
                    ->add_option("--socket", opts_.socket,
                                 "The node's control socket")
                    ->type_name("PATH");
    node_opt_ = where
                  ->add_option("--node", node_,
                               "A node's TCP control port (needs --token-file)")
                  ->type_name("HOST:PORT")
                  ->check(wants(
                    [](const std::string& x) {
                      return mcfg::parse_listen_address(x).has_value();
                    },
                    "HOST:PORT"));
    endpoints_opt_
      = where
          ->add_option("--endpoints", opts_.etcd.endpoints,
                       "Cluster commands: etcd's client URLs, comma-separated")
          ->type_name("URL[,URL...]")
          ->delimiter(',');
    where->require_option(1);
    auto token = app_
                   .add_option("--token-file", opts_.token_file,
                               "The file holding the bearer token (mode "
                               "0600) for --node")
                   ->type_name("FILE");
    node_opt_->needs(token);
    token->needs(node_opt_);
    cacert_opt_ = app_
                    .add_option("--cacert", opts_.cacert,
                                "Speak HTTPS to --node or --endpoints, "
                                "trusting this CA certificate")
                    ->type_name("PEM");
  }

  /// With --endpoints: what node.yaml's source.etcd would say.
  void declare_etcd() {
    auto etcd = app_.add_option_group(
      "etcd", "With --endpoints (node.yaml's source.etcd says the same):");
    etcd
      ->add_option("--prefix", opts_.etcd.prefix,
                   "The key prefix (default /memcached_cfg/)")
      ->type_name("P")
      ->needs(endpoints_opt_);
    auto user = etcd->add_option("--user", opts_.etcd.user, "etcd user name")
                  ->type_name("U")
                  ->needs(endpoints_opt_);
    auto password = etcd
                      ->add_option(
                        "--password-file", opts_.etcd.password_file,
                        "The file (mode 0600) holding the user's password")
                      ->type_name("FILE")
                      ->needs(user);
    user->needs(password);
    auto cert = etcd
                  ->add_option("--cert", opts_.etcd.cert,
                               "A client certificate for etcd's TLS")
                  ->type_name("PEM")
                  ->needs(endpoints_opt_);
    auto key = etcd
                 ->add_option("--key", opts_.etcd.key,
                              "The client certificate's private key")
                 ->type_name("PEM")
                 ->needs(cert);
    cert->needs(key);
  }

  void declare_timeout() {
    app_
      .add_option("--timeout", timeout_,
                  "Give up after this long (a duration: 500ms, 30s, 2m)")
      ->type_name("DURATION")
      ->capture_default_str()
      ->check(wants(
        [](const std::string& x) {
          auto d = mcfg::parse_duration(x);
          return d && d->count() > 0;
        },
        "a duration like 30s"));
  }

  void declare_status() {
    auto status = app_.add_subcommand(
      "status", "Print the source (path, version, last refusal), how many "
                "files are in each state, and every file with a problem "
                "(state, version, writes, errors, refresh)");
    status->add_flag("--all", opts_.all_files,
                     "Every file, not only those with a problem");
    status->add_flag("--json", opts_.json, "Print the node's JSON as it is");
  }

  void declare_sync() {
    auto sync = app_.add_subcommand(
      "sync", "Wait until every file (or FILE) holds the source as it is "
              "now, and its refresh went through; with --cluster, every node");
    auto file = sync
                  ->add_option("FILE", opts_.file,
                               "One file, by its path in node.yaml (default: "
                               "all)")
                  ->type_name("");
    version_opt_ = sync
                     ->add_option(
                       "--version", version_,
                       "Wait for this version of the source, or a later one")
                     ->type_name("N")
                     ->check(CLI::NonNegativeNumber);
    cluster_flag_
      = sync
          ->add_flag("--cluster", opts_.cluster,
                     "Wait for every node registered in etcd, and name those "
                     "that did not arrive in time")
          ->excludes(file)
          ->excludes(version_opt_);
    revision_opt_ = sync
                      ->add_option(
                        "--revision", revision_,
                        "With --cluster: wait for this etcd revision (default: "
                        "the newest), or a later one")
                      ->type_name("R")
                      ->check(CLI::PositiveNumber)
                      ->needs(cluster_flag_);
  }

  void declare_reload() {
    auto reload = app_.add_subcommand(
      "reload", "Re-read the source now and rewrite every file (or FILE)");
    reload
      ->add_option("FILE", opts_.file,
                   "One file, by its path in node.yaml (default: all)")
      ->type_name("");
  }

  void declare_health() {
    auto health = app_.add_subcommand(
      "health", "Exit 0 when the node is healthy, else 1 with the reasons");
    health->add_flag("--json", opts_.json, "Print the node's JSON as it is");
  }

  void declare_import() {
    import_ = app_.add_subcommand(
      "import", "Cluster: validate FILE as a node would and make it etcd's "
                "users in one transaction; print the new revision");
    import_->add_option("FILE", opts_.file, "A source YAML file")
      ->type_name("")
      ->required();
  }

  void declare_export() {
    export_ = app_.add_subcommand(
      "export", "Cluster: print etcd's users as a source YAML file");
    export_->add_flag("--show-secrets", opts_.show_secrets,
                      "Print the passwords (masked by default)");
  }

  void declare_cluster() {
    auto cluster = cluster_ = app_.add_subcommand("cluster",
                                                  "Cluster: the nodes in etcd");
    cluster->require_subcommand(0, 1);
    cluster->add_subcommand(
      "status", "Every registered node, the revision it holds, healthy or "
                "not");
    cluster->callback([cluster] {
      if (cluster->get_subcommands().empty())
        throw CLI::RequiredError("cluster: a command (status)");
    });
  }

  /// Whether `cmd` (as given) talks to etcd rather than to a node.
  bool for_etcd(const CLI::App* cmd) const {
    return cmd == import_ || cmd == export_ || cmd == cluster_
           || cluster_flag_->count() > 0;
  }

  /// After the parse: a command, and options that fit what it talks to.
  void check_command() {
    if (app_.get_subcommands().empty())
      throw CLI::RequiredError(
        "a command (status, sync, reload, health, import, export or "
        "cluster status)");
    auto* cmd = app_.get_subcommands().front();
    bool etcd = for_etcd(cmd);
    if (etcd && (socket_opt_->count() > 0 || node_opt_->count() > 0))
      throw CLI::ValidationError(
        cmd->get_name(),
        "talks to etcd: give --config node.yaml or --endpoints, not a node");
    if (!etcd && endpoints_opt_->count() > 0)
      throw CLI::ValidationError(cmd->get_name(),
                                 "talks to a node: give --config, --socket or "
                                 "--node, not --endpoints");
    if (cacert_opt_->count() > 0 && node_opt_->count() == 0
        && endpoints_opt_->count() == 0)
      throw CLI::ValidationError("--cacert",
                                 "is for HTTPS to --node or --endpoints");
  }

  options opts_;
  // Raw values, checked by their validators, turned into opts_ after.
  std::string node_;
  std::string timeout_ = "30s";
  uint64_t version_ = 0;
  int64_t revision_ = 0;
  CLI::App app_{"mcfgctl talks to a running mcfgd through its control API "
                "(HTTP/JSON on the node's Unix socket, or on TCP with a "
                "bearer token): its status and health, and sync and reload "
                "of the files it keeps. For a cluster whose source is etcd, "
                "it imports and exports the users and waits for every node.",
                "mcfgctl"};
  CLI::Option* socket_opt_ = nullptr;
  CLI::Option* node_opt_ = nullptr;
  CLI::Option* endpoints_opt_ = nullptr;
  CLI::Option* cacert_opt_ = nullptr;
  CLI::Option* version_opt_ = nullptr;
  CLI::Option* cluster_flag_ = nullptr;
  CLI::Option* revision_opt_ = nullptr;
  CLI::App* import_ = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* cluster_ = nullptr;
};

/// mcfgctl's command line; nothing when main should exit with *code.
std::optional<options> parse_args(int argc, char** argv, int& code) {
  command_line cli;
  return cli.parse(argc, argv, code);
}

/// import, export, cluster status, sync --cluster: the exit code.
int run_cluster(const options& opts) {
  auto target = mcfg::cluster_target_of(opts.etcd);
  if (!target) {
    std::cerr << "mcfgctl: " << target.error().message << '\n';
    return exit_usage;
  }
  auto& t = *target;
  auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
    opts.timeout);
  // The commands wait as long as --timeout allows, and no longer.
  t.client.retry_for = std::min(t.client.retry_for, timeout);
  if (opts.command == "import")
    return mcfg::cluster_import(t, opts.file, std::cout, std::cerr);
  if (opts.command == "export")
    return mcfg::cluster_export(t, opts.show_secrets, std::cout, std::cerr);
  if (opts.command == "cluster")
    return mcfg::cluster_status(t, std::cout, std::cerr);
  return mcfg::cluster_sync(t, opts.revision, timeout, std::cout, std::cerr);
}

/// Where and how to reach the node.
struct endpoint {
  std::string base_url;
  std::string unix_socket;
  std::string token;
  std::string cacert;
  std::string name; ///< for messages
};

mcfg::result<endpoint> resolve(const options& opts) {
  endpoint out;
  if (opts.node) {
    auto host = opts.node->host;
    if (host.find(':') != std::string::npos)
      host = "[" + host + "]";
    auto scheme = opts.cacert.empty() ? "http://" : "https://";
    out.base_url = scheme + host + ":" + std::to_string(opts.node->port);
    out.name = opts.node->host + ":" + std::to_string(opts.node->port);
    auto token = mcfg::read_token_file(opts.token_file);
    if (!token)
      return token.error();
    out.token = *token;
    out.cacert = opts.cacert;
    return out;
  }
  out.base_url = "http://localhost";
  out.unix_socket = opts.socket;
  if (!opts.config.empty()) {
    auto loaded = mcfg::load_node_config(opts.config);
    if (!loaded.ok())
      return mcfg::fail(loaded.errors.front().to_string());
    out.unix_socket = loaded.value->control.socket;
  }
  out.name = out.unix_socket;
  return out;
}

struct reply {
  long status = 0;
  std::string body;
};

/// curl's write callback: no exception may unwind through libcurl, so
/// running out of memory ends the transfer (curl reports a write error).
size_t collect(char* data, size_t size, size_t n, void* out) noexcept {
  try {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
  } catch (...) {
    return 0;
  }
}

/// One request; the transport's error text when there was no answer.
mcfg::result<reply> call(const endpoint& to, const options& opts,
                         const std::string& method, const std::string& path,
                         const std::string& body) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl{curl_easy_init(),
                                                           curl_easy_cleanup};
  if (!curl)
    return mcfg::fail("libcurl could not start");
  auto* h = curl.get();
  reply out;
  auto url = to.base_url + path;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  if (!to.unix_socket.empty())
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, to.unix_socket.c_str());
  if (!to.cacert.empty())
    curl_easy_setopt(h, CURLOPT_CAINFO, to.cacert.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(
    h, CURLOPT_TIMEOUT_MS,
    static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(opts.timeout)
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
    return mcfg::fail(curl_easy_strerror(rc));
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
  return x.is_string() ? x.get<std::string>()
                       : x.dump(-1, ' ', false, json::error_handler_t::replace);
}

void print_status(const json& st) {
  auto& src = st.at("source");
  std::cout << "source " << text(src.at("path")) << "  version "
            << src.at("version") << "  (" << text(src.at("watching")) << ")";
  if (src.at("last_refused").is_string())
    std::cout << "  (edit refused: " << text(src.at("last_refused")) << ")";
  if (src.contains("unreachable") && src.at("unreachable").is_string())
    std::cout << "\n  " << text(src.at("unreachable"));
  std::cout << "\n";
  if (st.contains("summary") && st.at("summary").is_object()) {
    auto& sum = st.at("summary");
    std::cout << sum.at("files") << " files:";
    for (auto& [state, count] : sum.at("states").items())
      std::cout << " " << count << " " << state;
    std::cout << "; " << sum.at("with_problems") << " with a problem"
              << (text(sum.at("shown")) == "all" ? " (all files below)"
                                                 : " (below; --all for all)");
  }
  std::cout << "\n\n";
  for (auto& f : st.at("files")) {
    std::cout << text(f.at("path")) << "\n  applied version "
              << f.at("applied_version") << ", confirmed version "
              << (f.at("confirmed_version").is_number()
                    ? f.at("confirmed_version").dump()
                    : std::string{"- (no consumer check)"})
              << ", state " << text(f.at("state")) << ", attempts "
              << f.at("attempts") << ", writes " << f.at("writes")
              << ", last write " << age(f.at("seconds_since_last_write"))
              << ", last change " << age(f.at("seconds_since_last_change"))
              << "\n";
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
    if (auto& v = r.at("verify"); v.is_object()) {
      std::cout << "  check of version " << v.at("version") << ": "
                << text(v.at("state"));
      if (v.at("seconds_verifying").is_number())
        std::cout << " for " << seconds(v.at("seconds_verifying"));
      if (v.at("detail").is_string())
        std::cout << ": " << text(v.at("detail"));
      std::cout << "\n";
    }
  }
}

/// What a sync waited for, per file: confirmed in its consumer, or only
/// written and refreshed.
void print_sync(const json& answer) {
  std::cout << "in sync:\n";
  for (auto& f : answer.at("files")) {
    auto basis = text(f.at("waited_for"));
    std::cout << "  " << text(f.at("path")) << ": version " << f.at("version");
    if (basis == "confirmed")
      std::cout << " confirmed: its consumer was shown to enforce it\n";
    else if (basis == "unverifiable")
      std::cout << " written and refreshed, not verifiable: "
                << text(f.at("note")) << "\n";
    else
      std::cout << " written and refreshed (no consumer check: not "
                   "confirmed)\n";
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
    return {"GET", opts.all_files ? "/v1/status?files=all" : "/v1/status", ""};
  if (opts.command == "health")
    return {"GET", "/healthz", ""};
  json body = json::object();
  if (!opts.file.empty())
    body["file"] = opts.file;
  if (opts.version)
    body["version"] = *opts.version;
  // A --file that is not valid UTF-8 is sent with U+FFFD (no node.yaml path
  // matches it), not thrown on.
  return {"POST", "/v1/" + opts.command,
          body.dump(-1, ' ', false, json::error_handler_t::replace)};
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
      print_sync(doc);
    else
      std::cout << "reload requested\n";
  } catch (const json::exception& e) {
    std::cerr << "mcfgctl: " << opts.command
              << ": unexpected answer: " << e.what() << '\n';
    return exit_failed;
  }
  return exit_ok;
}

/// The command on the node's control API: the exit code.
int run_node_command(const options& opts) {
  auto to = resolve(opts);
  if (!to) {
    std::cerr << "mcfgctl: " << to.error().message << '\n';
    return exit_usage;
  }
  auto& where = *to;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  auto req = request_for(opts);
  auto answer = call(where, opts, req.method, req.path, req.body);
  int rc = exit_failed;
  if (!answer)
    std::cerr << "mcfgctl: cannot reach mcfgd at " << where.name << ": "
              << answer.error().message << '\n';
  else
    rc = show(opts, *answer);
  curl_global_cleanup();
  return rc;
}

} // namespace

int main(int argc, char** argv) {
  mcfg::forbid_core_dumps(); // before any secret is read: no core holds one
  // No exception ends mcfgctl in an abort: whatever a command meets
  // unexpectedly is one line and exit 1. (A JSON error's text may quote a
  // value, a password under export: only its id is said.)
  try {
    int code = exit_ok;
    auto opts = parse_args(argc, argv, code);
    if (!opts)
      return code;
    return opts->cluster ? run_cluster(*opts) : run_node_command(*opts);
  } catch (...) {
    std::cerr << "mcfgctl: " << mcfg::etcd::describe_current_exception()
              << '\n';
    return exit_failed;
  }
}
