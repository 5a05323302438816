#pragma once
// The command-line conventions mcfgd and mcfgctl share, on CLI11: --help
// explains every option and command, --version prints the project's version
// and the git revision it was built from, bad usage exits 2.
#include <optional>
#include <string>
#include <string_view>

#include <CLI/App.hpp>

namespace mcfg::cli {

constexpr int exit_usage = 2;

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
