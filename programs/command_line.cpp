#include "memcached_cfg/programs/command_line.hpp"

#include <CLI/CLI.hpp>

#include "git_revision.hpp"

namespace mcfg::cli {

std::string version_line(std::string_view program) {
  // MCFG_VERSION from programs/CMakeLists.txt; MCFG_GIT_REVISION read at
  // build time (cmake/GitRevision.cmake).
  return std::string{program} + " " + MCFG_VERSION + " (git "
         + MCFG_GIT_REVISION + ")";
}

void conventions(CLI::App& app, std::string_view program,
                 std::string_view exit_codes) {
  app.set_version_flag("--version", version_line(program),
                       "Print the version and git revision, then exit");
  app.set_help_flag("-h,--help", "Print this help, then exit");
  app.footer("Exit codes:\n" + std::string{exit_codes});
}

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::Success& e) { // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 has an exit code per kind of error (105, 106, ...); a script
    // needs one: 2, as every Unix tool says "bad usage".
    app.exit(e);
    return exit_usage;
  }
}

} // namespace mcfg::cli
