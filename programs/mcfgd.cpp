// mcfgd: keeps memcached's auth file (and a permissions file) in step with a
// source of truth, under an OTP-style supervision tree.
//
//   mcfgd --config node.yaml [--check] [--log-level LEVEL]  (--help says more)
//
// Signals: SIGINT and SIGTERM stop the node; SIGHUP re-reads the source and
// rewrites every file (as `mcfgctl reload`) and never stops it.
//
// Exit codes: 0 clean stop (SIGINT/SIGTERM, or --check passed); 1 the root
// supervisor gave up (or the node could not start); 2 bad usage or bad
// configuration, before anything is written.
#include <atomic>
#include <csignal>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include <pthread.h>

#include <fstream>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <CLI/CLI.hpp>

#include "memcached_cfg/node/private_file.hpp"
#include "memcached_cfg/source/file_store.hpp"
#include "memcached_cfg/node/cluster_member.hpp"
#include "memcached_cfg/messages/log.hpp"
#include "memcached_cfg/messages/message_types.hpp"
#include "memcached_cfg/programs/command_line.hpp"
#include "memcached_cfg/control/bridge.hpp"
#include "memcached_cfg/control/server.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/node_tree.hpp"
#include "memcached_cfg/programs/readiness.hpp"
#include "memcached_cfg/programs/supervisor_log.hpp"
#include "memcached_cfg/supervision/errors.hpp"
#include "memcached_cfg/supervision/supervisor.hpp"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_gave_up = 1;
constexpr int exit_bad_config = 2;

struct options {
  std::string config;
  bool check = false;
  std::optional<mcfg::log::level> log_level;
};

/// mcfgd's command line; nothing when main should exit with *code.
std::optional<options> parse_args(int argc, char** argv, int& code) {
  options opts;
  std::string level;
  CLI::App app{"mcfgd keeps memcached's auth file (and a permissions file) in "
               "step with a source of truth, under an OTP-style supervision "
               "tree. It writes each file atomically, tells memcached to "
               "re-read it, and follows every edit of the source.",
               "mcfgd"};
  mcfg::cli::conventions(app, "mcfgd",
                         "  0  stopped by SIGINT/SIGTERM, or --check passed\n"
                         "  1  the node gave up (or could not start)\n"
                         "  2  bad usage or bad configuration, nothing "
                         "written");
  app.add_option("-c,--config", opts.config,
                 "The node's configuration (node.yaml): the source, the files "
                 "to keep and their modules, retry, supervisor, control")
    ->required()
    ->type_name("FILE");
  app.add_flag("--check", opts.check,
               "Validate node.yaml and the source, print what each file "
               "would hold (passwords redacted), write nothing, exit");
  app.add_option("--log-level", level,
                 "Log lines up to this level on stderr (default: node.yaml's "
                 "log_level, else info)")
    ->check(CLI::IsMember({"error", "warning", "info", "debug"}))
    ->type_name("LEVEL");
  if (auto exit_code = mcfg::cli::parse(app, argc, argv)) {
    code = *exit_code;
    return std::nullopt;
  }
  if (!level.empty())
    opts.log_level = mcfg::log::parse_level(level);
  return opts;
}

/// Starts one of mcfgd's own error lines on stderr (an error to the
/// journal, when stderr is the journal).
std::ostream& fatal() {
  return std::cerr << mcfg::log::journal_prefix(mcfg::log::level::error)
                   << "mcfgd: ";
}

int report(const std::vector<mcfg::located_error>& errors) {
  for (auto& err : errors)
    fatal() << err.to_string() << '\n';
  fatal() << "bad configuration, nothing written\n";
  return exit_bad_config;
}

/// The source, as status and logs name it.
std::string source_name(const mcfg::node_config& cfg) {
  if (!cfg.etcd)
    return cfg.source;
  return "etcd " + cfg.etcd->prefix + " (node " + cfg.name + ")";
}

int check(const mcfg::node_config& cfg, const mcfg::source_document& doc) {
  std::cout << "node.yaml " << cfg.config_file << " and source "
            << source_name(cfg) << " are valid\n";
  for (auto& file : cfg.files) {
    std::cout << "\n== " << file.path << " (" << file.module->name
              << ") ==\n"
              << mcfg::preview(*file.module, doc.values);
  }
  return exit_ok;
}

/// Blocks SIGINT, SIGTERM and SIGHUP in every thread (set before any thread
/// starts); a dedicated thread takes them with sigwait.
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

/// The control API's sockets, bound before any thread starts (the Unix
/// socket's mode comes from the umask at bind), with what each requires.
/// A problem with the token or TLS files is bad configuration (exit 2);
/// a socket that cannot be bound makes the node unable to start (exit 1).
struct control_setup {
  std::vector<mcfg::control_listener> listeners;
  std::string error;
  int exit_code = exit_ok;
};

control_setup open_control(const mcfg::node_config& cfg) {
  control_setup out;
  auto fail = [&](std::string err, int code) {
    out.error = std::move(err);
    out.exit_code = code;
    return std::move(out);
  };
  auto& control = cfg.control;
  // Read first: a bad token or key file is bad configuration, found before
  // any socket is touched.
  mcfg::control_listener tcp;
  if (control.listen) {
    auto token = mcfg::read_token_file(control.token_file);
    if (token.index() == 1)
      return fail(std::get<1>(token), exit_bad_config);
    tcp.token = std::get<0>(token);
    if (control.tls) {
      auto key = mcfg::read_private_file(control.tls->key, "TLS key");
      if (key.index() == 1)
        return fail(std::get<1>(key), exit_bad_config);
      std::ifstream in{control.tls->cert, std::ios::binary};
      std::ostringstream cert;
      cert << in.rdbuf();
      if (!in)
        return fail("TLS certificate " + control.tls->cert
                      + ": cannot read it",
                    exit_bad_config);
      tcp.tls = mcfg::tls_pem{cert.str(), std::get<0>(key)};
    }
  }
  auto unix_socket = mcfg::listening_socket::bind_unix(control.socket,
                                                       control.group);
  if (auto err = std::get_if<std::string>(&unix_socket))
    return fail(*err, exit_gave_up);
  mcfg::control_listener local;
  local.socket = std::move(std::get<mcfg::listening_socket>(unix_socket));
  local.group = control.group;
  out.listeners.push_back(std::move(local));
  if (control.listen) {
    auto bound = mcfg::listening_socket::bind_tcp(control.listen->host,
                                                  control.listen->port);
    if (auto err = std::get_if<std::string>(&bound))
      return fail(*err, exit_gave_up);
    tcp.socket = std::move(std::get<mcfg::listening_socket>(bound));
    out.listeners.push_back(std::move(tcp));
  }
  return out;
}

/// Requests from the API wait this long for the node's actors; a sync owes
/// at most a retry deadline, plus its refresh.
caf::timespan backend_timeout(const mcfg::node_config& cfg) {
  return std::max<caf::timespan>(std::chrono::seconds(30),
                                 2 * cfg.retry_deadline);
}

int run(const mcfg::node_config& cfg, const mcfg::node_source& src) {
  auto signals = handled_signals();
  auto control_sockets = open_control(cfg);
  if (control_sockets.exit_code != exit_ok) {
    fatal() << control_sockets.error << '\n';
    if (control_sockets.exit_code == exit_bad_config)
      fatal() << "bad configuration, nothing written\n";
    return control_sockets.exit_code;
  }
  caf::actor_system_config sys_cfg;
  mcfg::add_message_types(sys_cfg);
  mcfg::sup::add_message_types(sys_cfg);
  sys_cfg.set("logger.console-verbosity", caf::atom("quiet"));
  sys_cfg.set("logger.file-verbosity", caf::atom("quiet"));
  // Work sharing: idle workers sleep on a condition variable and wake when
  // a message comes. CAF's default, work stealing, polls for a while after
  // every message and wakes every 10 ms when idle: on a node that is idle
  // most of the time that is CPU taken from etcd and memcached, and a
  // 10 ms p99 (bench/README.md, "scheduler policy").
  sys_cfg.set("scheduler.policy", caf::atom("sharing"));
  caf::actor_system sys{sys_cfg};

  // The API first: a certificate that does not load is found before
  // anything is written. Until the tree runs, requests find no live child
  // and say so.
  mcfg::control_spec spec{{}, mcfg::store_child_id, mcfg::refresher_child_id};
  for (size_t i = 0; i < cfg.files.size(); ++i)
    spec.files.emplace_back(cfg.files[i].path, mcfg::writer_child_id(i));
  auto control = mcfg::spawn_control(sys, std::move(spec));
  auto backend = mcfg::make_actor_backend(sys, control, backend_timeout(cfg));
  auto server = mcfg::control_server::start(
    std::move(control_sockets.listeners), *backend);
  if (auto err = std::get_if<mcfg::control_start_error>(&server)) {
    fatal() << err->message << '\n';
    caf::anon_send_exit(control, caf::exit_reason::user_shutdown);
    if (!err->tls)
      return exit_gave_up;
    fatal() << "bad configuration, nothing written\n";
    return exit_bad_config;
  }

  auto truth = mcfg::make_truth(src);
  // Set on the way out: a refresh command still running is killed, so the
  // actor system (which waits for every actor) does not wait for it.
  auto stopping_flag = std::make_shared<std::atomic<bool>>(false);
  auto root = mcfg::sup::start_supervisor(
    sys, mcfg::root_flags(cfg),
    mcfg::node_children(cfg, truth, src, stopping_flag));
  if (!root) {
    stopping_flag->store(true);
    fatal() << "could not start: "
            << mcfg::sup::describe(root.error(), sys) << '\n';
    std::get<std::unique_ptr<mcfg::control_server>>(server).reset();
    caf::anon_send_exit(control, caf::exit_reason::user_shutdown);
    return exit_gave_up;
  }
  mcfg::log::info("mcfgd", "running with " + std::to_string(cfg.files.size())
                             + " files; source " + source_name(cfg));
  // An etcd source: the node registers itself, until it stops.
  std::unique_ptr<mcfg::cluster_member> member;
  if (src.etcd)
    member = std::make_unique<mcfg::cluster_member>(sys, cfg, src, truth);

  // Type=notify: systemd hears READY=1 once every file is written (the
  // control socket, started above, is up by then).
  std::vector<mcfg::sup::child_id> writers;
  for (size_t i = 0; i < cfg.files.size(); ++i)
    writers.push_back(mcfg::writer_child_id(i));
  mcfg::readiness ready{sys, std::move(writers)};

  // SIGHUP reloads; SIGINT or SIGTERM asks the root to stop, and its exit
  // ends the wait below either way.
  std::atomic<bool> stopping{false};
  std::thread signal_waiter{[&] {
    for (;;) {
      int sig = 0;
      sigwait(&signals, &sig);
      if (stopping.load())
        return; // woken by main to finish
      if (sig == SIGHUP) {
        mcfg::log::info("mcfgd", "received SIGHUP: re-reading the source and "
                                 "rewriting every file");
        mcfg::reload_all(sys, cfg);
        continue;
      }
      if (stopping.exchange(true))
        return;
      mcfg::log::info("mcfgd", std::string{"received "} + strsignal(sig)
                                 + ", stopping");
      stopping_flag->store(true);
      caf::anon_send_exit(*root, caf::exit_reason::user_shutdown);
      return;
    }
  }};

  caf::error reason;
  {
    caf::scoped_actor self{sys};
    self->monitor(*root);
    self->receive([&](caf::down_msg& msg) { reason = std::move(msg.reason); });
  }
  member.reset();
  stopping_flag->store(true);
  bool asked_to_stop = stopping.exchange(true);
  if (!asked_to_stop)
    pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  // The writers are gone, so requests still running end now; then the
  // sockets close and the socket file goes.
  std::get<std::unique_ptr<mcfg::control_server>>(server).reset();
  caf::anon_send_exit(control, caf::exit_reason::user_shutdown);
  if (asked_to_stop && reason == caf::exit_reason::user_shutdown) {
    mcfg::log::info("mcfgd", "stopped");
    return exit_ok;
  }
  fatal() << "root supervisor gave up: "
            << mcfg::sup::describe(reason, sys) << '\n';
  return exit_gave_up;
}

} // namespace

int main(int argc, char** argv) {
  int code = exit_ok;
  auto opts = parse_args(argc, argv, code);
  if (!opts)
    return code;
  auto loaded = mcfg::load_node_config(opts->config);
  if (!loaded.ok())
    return report(loaded.errors);
  auto& cfg = *loaded.value;
  mcfg::log::set_level(opts->log_level.value_or(cfg.log_level));
  mcfg::log_supervisors_to_mcfg_log();
  auto source = mcfg::load_node_source(cfg);
  if (!source.ok())
    return report(source.errors);
  if (opts->check)
    return check(cfg, source.value->doc);
  return run(cfg, *source.value);
}
