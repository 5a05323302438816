#pragma once
// The command-line conventions mcfgd and mcfgctl share, on CLI11: --help
// explains every option and command, --version prints the project's version
// and the git revision it was built from, bad usage exits 2, and the one
// list of exit codes both programs (and mcfgctl's cluster commands) return.
#include <optional>
#include <string>
#include <string_view>

#include <CLI/App.hpp>

namespace mcfg::cli {

/// The exit codes, for scripts and systemd: mcfgd's and mcfgctl's --help
/// footers list them, in their own words. Each name is for the program(s)
/// it says; numbers are shared, so 1 and 2 have two names each.
enum exit_code : int {
  /// Both: done (mcfgd: stopped by SIGINT/SIGTERM, or --check passed;
  /// mcfgctl health: the node is healthy).
  exit_ok = 0,
  /// mcfgd: the root supervisor gave up, or the node could not start.
  exit_gave_up = 1,
  /// mcfgctl: the node (or etcd) answered with an error, or was not
  /// reached in time; health: unhealthy.
  exit_failed = 1,
  /// mcfgd: bad configuration (node.yaml, the source, the control API's
  /// files), found before anything is written.
  exit_bad_config = 2,
  /// Both: bad usage (CLI11 refused the command line).
  exit_usage = 2,
};

/// "mcfgd 0.2.0 (git 4d21e70-dirty)"; the revision is "unknown" when the
/// build had no git checkout.
std::string version_line(std::string_view program);

/// Adds --version and a footer with `exit_codes` (one line each) to `app`.
void conventions(CLI::App& app, std::string_view program,
                 std::string_view exit_codes);

/// Parses argv into `app`. Nothing when the program should go on; else the
/// code to exit with, once CLI11 printed the help (0), the version (0) or
/// what was wrong with the usage (exit_usage).
std::optional<int> parse(CLI::App& app, int argc, char** argv);

} // namespace mcfg::cli
