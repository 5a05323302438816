// mcfgctl: talks to a running mcfgd over CAF's network layer.
//
//   mcfgctl --node HOST:PORT [--timeout DURATION] status|sync|reload [FILE]
//
// Exit codes: 0 done; 1 the node answered with an error, or could not be
// reached in time; 2 bad usage.
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "messages/errors.hpp"
#include "messages/message_types.hpp"
#include "node/control.hpp"
#include "node/node_config.hpp"
#include "supervision/errors.hpp"
#include "supervision/supervisor.hpp"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

struct options {
  mcfg::listen_address node;
  caf::timespan timeout = std::chrono::seconds(30);
  std::string command;
  std::string file;
};

void usage(std::ostream& out) {
  out << "usage: mcfgctl --node HOST:PORT [--timeout 30s] "
         "status|sync|reload [FILE]\n";
}

std::optional<options> parse_args(int argc, char** argv) {
  options opts;
  bool have_node = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--node" || arg == "--timeout") && i + 1 >= argc) {
      std::cerr << "mcfgctl: " << arg << " needs a value\n";
      return std::nullopt;
    }
    if (arg == "--node") {
      auto addr = mcfg::parse_listen_address(argv[++i]);
      if (!addr) {
        std::cerr << "mcfgctl: --node wants HOST:PORT, got '" << argv[i]
                  << "'\n";
        return std::nullopt;
      }
      opts.node = *addr;
      have_node = true;
    } else if (arg == "--timeout") {
      auto d = mcfg::parse_duration(argv[++i]);
      if (!d) {
        std::cerr << "mcfgctl: --timeout wants a duration like 30s, got '"
                  << argv[i] << "'\n";
        return std::nullopt;
      }
      opts.timeout = *d;
    } else if (arg == "--help" || arg == "-h") {
      usage(std::cout);
      std::exit(exit_ok);
    } else if (opts.command.empty()) {
      opts.command = arg;
    } else if (opts.file.empty()) {
      opts.file = arg;
    } else {
      std::cerr << "mcfgctl: unexpected argument '" << arg << "'\n";
      return std::nullopt;
    }
  }
  if (!have_node) {
    std::cerr << "mcfgctl: --node is required\n";
    return std::nullopt;
  }
  if (opts.command != "status" && opts.command != "sync"
      && opts.command != "reload") {
    std::cerr << "mcfgctl: unknown command '" << opts.command << "'\n";
    return std::nullopt;
  }
  if (opts.command == "status" && !opts.file.empty()) {
    std::cerr << "mcfgctl: status takes no file\n";
    return std::nullopt;
  }
  return opts;
}

std::string seconds(caf::timespan d) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1)
      << std::chrono::duration<double>(d).count() << "s";
  return out.str();
}

std::string age(caf::timespan d) {
  return d.count() < 0 ? "never" : seconds(d) + " ago";
}

void print_status(const mcfg::node_status& st) {
  std::cout << "source " << st.source.path << "  version "
            << st.source.version;
  if (!st.source.last_error.empty())
    std::cout << "  (edit refused: " << st.source.last_error << ")";
  std::cout << "\n\n";
  for (auto& f : st.files) {
    std::cout << f.path << "\n  state " << to_string(f.phase) << ", attempts "
              << f.attempts << ", writes " << f.writes << ", last write "
              << age(f.since_last_write) << ", last change "
              << age(f.since_last_change) << "\n";
    if (!f.last_error.empty())
      std::cout << "  last error: " << f.last_error << "\n";
    if (f.restarts > 0)
      std::cout << "  FAULT: failing for " << seconds(f.failing_for)
                << ", " << f.restarts << " restarts; " << f.last_give_up
                << "\n";
    for (auto& [key, value] : f.module)
      std::cout << "  " << key << ": " << value << "\n";
  }
  for (auto& r : st.refreshes) {
    std::cout << "refresh " << r.path << ": "
              << (r.running ? "running" : r.pending ? "pending" : "done")
              << ", " << r.refreshes << " refreshes";
    if (r.failures > 0)
      std::cout << ", " << r.failures << " failures: " << r.last_error;
    if (r.next_retry_in.count() >= 0)
      std::cout << "; next retry in " << seconds(r.next_retry_in);
    std::cout << "\n";
  }
}

} // namespace

int main(int argc, char** argv) {
  auto opts = parse_args(argc, argv);
  if (!opts) {
    usage(std::cerr);
    return exit_usage;
  }
  caf::actor_system_config cfg;
  mcfg::add_message_types(cfg);
  mcfg::sup::add_message_types(cfg);
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto node = sys.middleman().remote_actor<mcfg::control_actor>(
    opts->node.host, opts->node.port);
  if (!node) {
    std::cerr << "mcfgctl: cannot reach mcfgd at " << opts->node.host << ':'
              << opts->node.port << ": " << sys.render(node.error()) << '\n';
    return exit_failed;
  }
  caf::scoped_actor self{sys};
  int rc = exit_ok;
  auto on_error = [&](caf::error& err) {
    std::cerr << "mcfgctl: " << opts->command << " failed: "
              << mcfg::sup::describe(err, sys) << '\n';
    rc = exit_failed;
  };
  if (opts->command == "status") {
    self->request(*node, opts->timeout, mcfg::status_atom::value)
      .receive([](mcfg::node_status& st) { print_status(st); }, on_error);
  } else if (opts->command == "sync") {
    self->request(*node, opts->timeout, mcfg::sync_atom::value, opts->file)
      .receive(
        [&](caf::ok_atom) {
          std::cout << "in sync: "
                    << (opts->file.empty() ? "every file" : opts->file)
                    << " reflects the current source and was refreshed\n";
        },
        on_error);
  } else {
    self->request(*node, opts->timeout, mcfg::reload_atom::value, opts->file)
      .receive([](caf::ok_atom) { std::cout << "reload requested\n"; },
               on_error);
  }
  return rc;
}
