// mcfgd: keeps memcached's auth file (and a permissions file) in step with a
// source of truth, under an OTP-style supervision tree.
//
//   mcfgd --config node.yaml [--check] [--log-level LEVEL]  (--help says more)
//
// Signals: SIGINT and SIGTERM stop the node; SIGHUP re-reads the source and
// rewrites every file (as `mcfgctl reload`) and never stops it.
//
// Exit codes: 0 clean stop (SIGINT/SIGTERM, or --check passed); 1 the root
// supervisor gave up (or the node could not start, or --check found etcd
// unreachable); 2 bad usage or bad configuration, before anything is
// written. An etcd source that does not answer at start is waited for
// (programs/start_wait.hpp).
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <CLI/CLI.hpp>

#include "memcached_cfg/actors/file_port.hpp"
#include "memcached_cfg/control/bridge.hpp"
#include "memcached_cfg/control/server.hpp"
#include "memcached_cfg/messages/duration.hpp"
#include "memcached_cfg/messages/log.hpp"
#include "memcached_cfg/messages/message_types.hpp"
#include "memcached_cfg/node/cluster_member.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/node_tree.hpp"
#include "memcached_cfg/node/private_file.hpp"
#include "memcached_cfg/programs/command_line.hpp"
#include "memcached_cfg/programs/node_locks.hpp"
#include "memcached_cfg/programs/readiness.hpp"
#include "memcached_cfg/programs/start_wait.hpp"
#include "memcached_cfg/programs/supervisor_log.hpp"
#include "memcached_cfg/source/file_store.hpp"
#include "memcached_cfg/supervision/errors.hpp"
#include "memcached_cfg/supervision/supervisor.hpp"

namespace {

using mcfg::cli::exit_bad_config;
using mcfg::cli::exit_gave_up;
using mcfg::cli::exit_ok;

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
                         "  1  the node gave up (or could not start), or "
                         "--check found etcd unreachable\n"
                         "  2  bad usage or bad configuration, nothing "
                         "written (an etcd that does not answer at start is "
                         "waited for)");
  app
    .add_option("-c,--config", opts.config,
                "The node's configuration (node.yaml): the source, the files "
                "to keep and their modules, retry, supervisor, control")
    ->required()
    ->type_name("FILE");
  app.add_flag("--check", opts.check,
               "Validate node.yaml and the source, print what each file "
               "would hold (passwords redacted), write nothing, exit");
  app
    .add_option("--log-level", level,
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
  // Escaped as log lines are: an error may quote a key of the source.
  for (auto& err : errors)
    fatal() << mcfg::log::escape(err.to_string()) << '\n';
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
    // The probe's target, so that an operator sees which memcached, and
    // over what, confirms this file (plain TCP: node_config.hpp).
    std::string verify;
    if (file.verify)
      verify = ", verify: memcached at " + file.verify->memcached
               + " over plain TCP, timeout "
               + mcfg::format_duration(file.verify->timeout);
    std::cout << "\n== " << file.path << " (" << file.module->name << verify
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

/// Why the node could not start, and the exit code that says which kind:
/// bad configuration (exit_bad_config) or a node unable to start
/// (exit_gave_up).
struct startup_failure {
  std::string message;
  int exit_code = exit_gave_up;
};

/// Prints `why` (and, for bad configuration, that nothing was written);
/// the exit code.
int report(const startup_failure& why) {
  fatal() << mcfg::log::escape(why.message) << '\n';
  if (why.exit_code == exit_bad_config)
    fatal() << "bad configuration, nothing written\n";
  return why.exit_code;
}

/// The TCP listener's token and TLS pair, read from their files. Read
/// before any socket is touched: a bad token or key file is bad
/// configuration.
mcfg::result<mcfg::control_listener, startup_failure>
read_tcp_secrets(const mcfg::control_config& control) {
  auto bad_config = [](std::string message) {
    return startup_failure{std::move(message), exit_bad_config};
  };
  mcfg::control_listener tcp;
  auto token = mcfg::read_token_file(control.token_file);
  if (!token)
    return bad_config(token.error().message);
  tcp.token = *token;
  if (control.tls) {
    auto key = mcfg::read_private_file(control.tls->key, "TLS key");
    if (!key)
      return bad_config(key.error().message);
    std::ifstream in{control.tls->cert, std::ios::binary};
    std::ostringstream cert;
    cert << in.rdbuf();
    if (!in)
      return bad_config("TLS certificate " + control.tls->cert
                        + ": cannot read it");
    tcp.tls = mcfg::tls_pem{cert.str(), *key};
  }
  return tcp;
}

/// The TCP listener's secrets when there is one (read_tcp_secrets).
mcfg::result<std::optional<mcfg::control_listener>, startup_failure>
read_control_secrets(const mcfg::node_config& cfg) {
  if (!cfg.control.listen)
    return std::optional<mcfg::control_listener>{};
  auto read = read_tcp_secrets(cfg.control);
  if (!read)
    return read.error();
  return std::optional<mcfg::control_listener>{std::move(read).value()};
}

/// The control API's sockets, bound before any thread starts (the Unix
/// socket's mode comes from the umask at bind), with what each requires;
/// `tcp` is what read_control_secrets read. A socket that cannot be bound
/// makes the node unable to start (exit 1).
mcfg::result<std::vector<mcfg::control_listener>, startup_failure>
open_control(const mcfg::node_config& cfg,
             std::optional<mcfg::control_listener> tcp) {
  auto& control = cfg.control;
  auto unix_socket = mcfg::listening_socket::bind_unix(control.socket,
                                                       control.group);
  if (!unix_socket)
    return startup_failure{unix_socket.error().message, exit_gave_up};
  std::vector<mcfg::control_listener> out;
  mcfg::control_listener local;
  local.socket = std::move(unix_socket).value();
  local.group = control.group;
  out.push_back(std::move(local));
  if (tcp) {
    auto bound = mcfg::listening_socket::bind_tcp(control.listen->host,
                                                  control.listen->port);
    if (!bound)
      return startup_failure{bound.error().message, exit_gave_up};
    tcp->socket = std::move(bound).value();
    out.push_back(std::move(*tcp));
  }
  return out;
}

/// Requests from the API wait this long for the node's actors; a sync owes
/// at most a retry deadline, plus its refresh.
caf::timespan backend_timeout(const mcfg::node_config& cfg) {
  return std::max<caf::timespan>(std::chrono::seconds(30),
                                 2 * cfg.retry_deadline);
}

/// mcfgd's actor system settings; returns `cfg`.
caf::actor_system_config& configure(caf::actor_system_config& cfg) {
  mcfg::add_message_types(cfg);
  mcfg::sup::add_message_types(cfg);
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  // Work sharing: idle workers sleep on a condition variable and wake when
  // a message comes. CAF's default, work stealing, polls for a while after
  // every message and wakes every 10 ms when idle: on a node that is idle
  // most of the time that is CPU taken from etcd and memcached, and a
  // 10 ms p99 (bench/README.md, "scheduler policy").
  cfg.set("scheduler.policy", caf::atom("sharing"));
  return cfg;
}

/// An actor handle that stops its actor (user_shutdown) when destroyed;
/// for an actor already gone that is a no-op.
template <class Handle>
struct stopped_at_exit {
  Handle actor;

  ~stopped_at_exit() {
    if (actor)
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }
};

/// Takes SIGINT, SIGTERM and SIGHUP (blocked in every thread) with sigwait,
/// on a thread of its own: SIGHUP reloads; SIGINT or SIGTERM asks the root
/// to stop, whose exit ends the node's wait either way.
class signal_waiter {
public:
  signal_waiter(sigset_t signals, caf::actor_system& sys,
                const mcfg::node_config& cfg, mcfg::sup::supervisor_actor root,
                std::shared_ptr<std::atomic<bool>> stopping_flag)
    : signals_(signals), thread_([=, &sys, &cfg] {
        wait_for_signals(sys, cfg, root, stopping_flag);
      }) {
  }

  ~signal_waiter() {
    stop();
  }

  signal_waiter(const signal_waiter&) = delete;
  signal_waiter& operator=(const signal_waiter&) = delete;

  /// Ends the thread (waking it if no stop signal did); whether SIGINT or
  /// SIGTERM had come first (later calls say what the first found).
  bool stop() {
    if (!thread_.joinable())
      return asked_to_stop_;
    asked_to_stop_ = stopping_.exchange(true);
    if (!asked_to_stop_)
      pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
    return asked_to_stop_;
  }

private:
  void wait_for_signals(caf::actor_system& sys, const mcfg::node_config& cfg,
                        const mcfg::sup::supervisor_actor& root,
                        const std::shared_ptr<std::atomic<bool>>& flag) {
    for (;;) {
      int sig = 0;
      sigwait(&signals_, &sig);
      if (stopping_.load())
        return; // woken by stop()
      if (sig == SIGHUP) {
        mcfg::log::info("mcfgd", "received SIGHUP: re-reading the source and "
                                 "rewriting every file");
        mcfg::reload_all(sys, cfg);
        continue;
      }
      if (stopping_.exchange(true))
        return;
      mcfg::log::info("mcfgd",
                      std::string{"received "} + strsignal(sig) + ", stopping");
      flag->store(true);
      caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
      return;
    }
  }

  sigset_t signals_;
  std::atomic<bool> stopping_{false};
  bool asked_to_stop_ = false;
  std::thread thread_;
};

/// A running node: its jobs, started in order by start(). They are members
/// declared in that order, so that destroying the node, whether start()
/// went through or stopped half-way, is the ordered teardown: C++ destroys
/// members in the reverse order of their declaration. The signals stop
/// being taken, the readiness wait and the cluster registration end, then
/// the control server stops (the writers are gone, so requests still
/// running end now; then the sockets close and the socket file goes), the
/// control actor stops, and the actor system waits for every actor. Once
/// the root is gone, wait() ends the registration and the signal thread
/// at once, before anything else.
class node_process {
public:
  node_process(const mcfg::node_config& cfg, sigset_t signals,
               mcfg::node_locks& locks)
    : cfg_(cfg), signals_(signals), locks_(locks) {
  }

  ~node_process() {
    // Set on the way out: a refresh command still running is killed, so
    // the actor system (which waits for every actor) does not wait for it.
    if (stopping_flag_)
      stopping_flag_->store(true);
  }

  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  /// Starts the control API on `listeners` and takes the files' locks;
  /// stops at the first that fails. Until start(), status shows what
  /// note() holds.
  mcfg::result<void, startup_failure>
  open(std::vector<mcfg::control_listener> listeners) {
    if (auto api = start_control(std::move(listeners)); !api)
      return api;
    if (auto why = mcfg::lock_files(cfg_, locks_))
      return startup_failure{*why};
    return {};
  }

  /// What status shows as the source until start().
  mcfg::startup_note& note() {
    return note_;
  }

  /// Once open: the supervision tree on `src`, the cluster registration,
  /// the readiness wait and the signal thread; stops at the first that
  /// fails.
  mcfg::result<void, startup_failure> start(mcfg::node_source src) {
    src_ = std::move(src);
    truth_ = mcfg::make_truth(*src_);
    stopping_flag_ = std::make_shared<std::atomic<bool>>(false);
    auto root = mcfg::sup::start_supervisor(
      sys_, mcfg::root_flags(cfg_),
      mcfg::node_children(cfg_, truth_, *src_, io_pool_, board_,
                          stopping_flag_));
    if (!root)
      return startup_failure{"could not start: "
                               + mcfg::sup::describe(root.error(), sys_),
                             exit_gave_up};
    root_.actor = *root;
    note_.clear(); // the store answers status from now on
    mcfg::log::info("mcfgd", "running with " + std::to_string(cfg_.files.size())
                               + " files; source " + source_name(cfg_));
    // An etcd source: the node registers itself, until it stops.
    if (src_->etcd)
      member_ = std::make_unique<mcfg::cluster_member>(sys_, cfg_, *src_,
                                                       truth_, board_);
    // Type=notify: systemd hears READY=1 once every file is written (the
    // control socket, started above, is up by then).
    std::vector<mcfg::sup::child_id> writers;
    for (size_t i = 0; i < cfg_.files.size(); ++i)
      writers.push_back(mcfg::writer_child_id(i));
    ready_.emplace(sys_, std::move(writers));
    signals_taken_.emplace(signals_, sys_, cfg_, root_.actor, stopping_flag_);
    return {};
  }

  /// Once started: blocks until the root supervisor exits, then leaves the
  /// cluster and stops taking signals. Success when the root stopped
  /// because SIGINT or SIGTERM asked it to; else why it gave up.
  mcfg::result<void> wait() {
    caf::error reason;
    {
      caf::scoped_actor self{sys_};
      self->monitor(root_.actor);
      self->receive(
        [&](caf::down_msg& msg) { reason = std::move(msg.reason); });
    }
    member_.reset();
    stopping_flag_->store(true);
    bool asked_to_stop = signals_taken_->stop();
    if (asked_to_stop && reason == caf::exit_reason::user_shutdown)
      return {};
    return mcfg::fail("root supervisor gave up: "
                      + mcfg::sup::describe(reason, sys_));
  }

private:
  /// The API first: a certificate that does not load is found before
  /// anything is written. Until the tree runs, requests find no live child
  /// and say so.
  mcfg::result<void, startup_failure>
  start_control(std::vector<mcfg::control_listener> listeners) {
    mcfg::control_spec spec{{},
                            mcfg::store_child_id,
                            mcfg::refresher_child_id,
                            [this] { return note_.get(); },
                            board_};
    for (size_t i = 0; i < cfg_.files.size(); ++i)
      spec.files.emplace_back(cfg_.files[i].path, mcfg::writer_child_id(i));
    control_.actor = mcfg::spawn_control(sys_, std::move(spec));
    backend_ = mcfg::make_actor_backend(sys_, control_.actor,
                                        backend_timeout(cfg_));
    auto server = mcfg::control_server::start(std::move(listeners), *backend_);
    if (!server)
      return startup_failure{server.error().message, server.error().tls
                                                       ? exit_bad_config
                                                       : exit_gave_up};
    server_ = std::move(server).value();
    return {};
  }

  const mcfg::node_config& cfg_;
  std::optional<mcfg::node_source> src_;
  sigset_t signals_;
  /// node.yaml's and the files' locks: released last, after every job.
  mcfg::node_locks& locks_;
  /// Read by the control actor: declared before it, so it outlives it.
  mcfg::startup_note note_;
  /// The writers' I/O: declared before the actor system, so that it is
  /// destroyed (its last jobs run, its threads joined) after every actor.
  std::shared_ptr<mcfg::io_pool> io_pool_ = mcfg::make_io_pool(cfg_);
  /// What the writers and the refresher publish, for status and the
  /// registration to read.
  std::shared_ptr<mcfg::status_board> board_ = mcfg::make_status_board(cfg_);
  // The jobs, in start order (see the class comment).
  caf::actor_system_config sys_cfg_;
  caf::actor_system sys_{configure(sys_cfg_)};
  stopped_at_exit<mcfg::control_actor> control_;
  std::unique_ptr<mcfg::control_backend> backend_;
  std::unique_ptr<mcfg::control_server> server_;
  std::shared_ptr<mcfg::source_of_truth> truth_;
  std::shared_ptr<std::atomic<bool>> stopping_flag_;
  stopped_at_exit<mcfg::sup::supervisor_actor> root_;
  std::unique_ptr<mcfg::cluster_member> member_;
  std::optional<mcfg::readiness> ready_;
  std::optional<signal_waiter> signals_taken_;
};

/// The source, once read: `read` itself, or (an etcd that did not answer)
/// what wait_for_source read later. Nothing when SIGINT or SIGTERM stopped
/// the wait (a clean stop); a failure for bad configuration.
mcfg::result<std::optional<mcfg::node_source>, std::vector<mcfg::located_error>>
source_when_read(const mcfg::node_config& cfg, mcfg::node_source_read read,
                 const sigset_t& signals, mcfg::startup_note& note) {
  if (read.unreachable) {
    auto later = mcfg::wait_for_source(cfg, std::move(read), signals, note);
    if (!later)
      return std::optional<mcfg::node_source>{};
    read = std::move(*later);
  }
  if (!read.loaded.ok())
    return std::move(read.loaded.errors);
  return std::optional<mcfg::node_source>{std::move(*read.loaded.value)};
}

int run(const mcfg::node_config& cfg, mcfg::node_source_read read) {
  // A bad token or key file is bad configuration, found before anything
  // (a lock file included) is written.
  auto secrets = read_control_secrets(cfg);
  if (!secrets)
    return report(secrets.error());
  if (auto why = mcfg::raise_open_files_limit(cfg))
    return report({*why});
  mcfg::node_locks locks;
  if (auto why = mcfg::lock_node_yaml(cfg, locks))
    return report({*why});
  auto signals = handled_signals();
  auto listeners = open_control(cfg, std::move(secrets).value());
  if (!listeners)
    return report(listeners.error());
  mcfg::result<void> stopped;
  {
    node_process node{cfg, signals, locks};
    if (auto opened = node.open(std::move(listeners).value()); !opened)
      return report(opened.error());
    auto src = source_when_read(cfg, std::move(read), signals, node.note());
    if (!src)
      return report(src.error());
    if (!*src) {
      mcfg::log::info("mcfgd", "stopped");
      return exit_ok;
    }
    if (auto started = node.start(std::move(**src)); !started)
      return report(started.error());
    stopped = node.wait();
  } // the ordered teardown
  if (!stopped) {
    fatal() << mcfg::log::escape(stopped.error().message) << '\n';
    return exit_gave_up;
  }
  mcfg::log::info("mcfgd", "stopped");
  return exit_ok;
}

} // namespace

int main(int argc, char** argv) {
  mcfg::forbid_core_dumps(); // before any secret is read: no core holds one
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
  if (source.unreachable && opts->check) {
    // Nothing wrong was found, and nothing could be checked of the users.
    for (auto& err : source.loaded.errors)
      fatal() << mcfg::log::escape(err.to_string()) << '\n';
    fatal() << "cannot check the source: etcd did not answer; node.yaml "
               "itself is valid\n";
    return exit_gave_up;
  }
  if (!source.unreachable && !source.loaded.ok())
    return report(source.loaded.errors);
  if (opts->check)
    return check(cfg, source.loaded.value->doc);
  return run(cfg, std::move(source));
}
