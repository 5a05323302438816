// libFuzzer target: the node.yaml loader, parse_node_config(text, path).
//
// Properties:
// - a config or at least one error, never both; every error names the file,
//   has a message and a sane position, and to_string() carries both;
// - errors come in document order (line, then column);
// - a loaded config keeps what node_config.hpp promises: absolute, lexically
//   normal paths, each naming a file (not `dir/`, so not `..` either); at
//   least one file; no two files on one path or on each other's temporary
//   file (checked here pair by pair, the loader's check is linear), none
//   on its folder's lock file (mcfgd.lock) or the source; modes without
//   group/other write (and without world read for the passwords file);
//   positive durations; a signal refresh names a pidfile, a command
//   refresh has argv.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <tuple>
#include <variant>

#include "fuzz/fuzz_common.hpp"
#include "memcached_cfg/node/node_config.hpp"

namespace {

// Absolute, so relative paths in the input never depend on the working
// directory. Nothing is read or written there.
const std::string config_path = "/fuzz/etc/node.yaml";

bool absolute_and_normal(const std::string& p) {
  std::filesystem::path path{p};
  return !p.empty() && path.is_absolute()
         && path.lexically_normal().string() == p;
}

/// A path the loader accepted names a file, never a directory: node_config
/// refuses `dir/` ("expected a file path, got a directory"), so `.`, `..`
/// or `dir/..`, which normalise to the same thing, must not pass either.
bool names_a_file(const std::string& p) {
  return absolute_and_normal(p) && !std::filesystem::path{p}.filename().empty();
}

void check_config(const mcfg::node_config& cfg) {
  FUZZ_CHECK(cfg.config_file == config_path);
  FUZZ_CHECK(names_a_file(cfg.source));
  FUZZ_CHECK(!cfg.files.empty());
  FUZZ_CHECK(cfg.retry_interval.count() > 0);
  FUZZ_CHECK(cfg.retry_deadline.count() > 0);
  FUZZ_CHECK(cfg.supervisor_period.count() > 0);
  FUZZ_CHECK(cfg.supervisor_intensity <= 1'000'000);
  for (size_t i = 0; i < cfg.files.size(); ++i) {
    const auto& f = cfg.files[i];
    FUZZ_CHECK(names_a_file(f.path));
    // No file on a folder's lock file (programs/node_locks.cpp, lock_files).
    FUZZ_CHECK(f.path != mcfg::folder_lock_of(f.path));
    FUZZ_CHECK(f.path != cfg.source);
    FUZZ_CHECK(f.mode <= 0777);
    FUZZ_CHECK((f.mode & 0022) == 0);
    FUZZ_CHECK(f.module != nullptr);
    FUZZ_CHECK((f.mode & f.module->forbidden_mode) == 0);
    for (size_t j = 0; j < i; ++j) {
      const auto& g = cfg.files[j];
      FUZZ_CHECK(f.path != g.path);
      FUZZ_CHECK(f.path != g.path + ".tmp" && g.path != f.path + ".tmp");
    }
    if (auto sig = std::get_if<mcfg::refresh_signal>(&f.refresh)) {
      FUZZ_CHECK(sig->signal > 0);
      FUZZ_CHECK(sig->name.compare(0, 3, "SIG") == 0);
      FUZZ_CHECK(names_a_file(sig->pidfile));
    } else if (auto cmd = std::get_if<mcfg::refresh_command>(&f.refresh)) {
      FUZZ_CHECK(!cmd->argv.empty());
      FUZZ_CHECK(!cmd->argv.front().empty());
      for (auto& arg : cmd->argv)
        FUZZ_CHECK(arg.find('\0') == std::string::npos);
    }
  }
  // The control section: a socket path a Unix socket can bind, on no file
  // the node writes or reads; TCP only with a token, off loopback only
  // with TLS.
  const auto& control = cfg.control;
  FUZZ_CHECK(names_a_file(control.socket));
  FUZZ_CHECK(control.socket.size() < 108);
  FUZZ_CHECK(control.socket != cfg.source && control.socket != cfg.config_file);
  for (auto& f : cfg.files)
    FUZZ_CHECK(control.socket != f.path && control.socket != f.path + ".tmp"
               && control.socket != mcfg::folder_lock_of(f.path));
  FUZZ_CHECK(control.listen.has_value() == !control.token_file.empty());
  if (control.listen) {
    FUZZ_CHECK(!control.listen->host.empty());
    FUZZ_CHECK(names_a_file(control.token_file));
    FUZZ_CHECK(mcfg::is_loopback_host(control.listen->host)
               || control.tls.has_value());
  }
  if (control.tls) {
    FUZZ_CHECK(control.listen.has_value());
    FUZZ_CHECK(names_a_file(control.tls->cert));
    FUZZ_CHECK(names_a_file(control.tls->key));
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = mcfg_fuzz::as_text(data, size);
  auto result = mcfg::parse_node_config(text, config_path);
  mcfg_fuzz::check_errors_contract(result.value.has_value(), result.errors,
                                   config_path);
  FUZZ_CHECK(result.ok() == result.value.has_value());
  for (size_t i = 1; i < result.errors.size(); ++i) {
    const auto& a = result.errors[i - 1];
    const auto& b = result.errors[i];
    FUZZ_CHECK(std::tie(a.line, a.column) <= std::tie(b.line, b.column));
  }
  if (result.value)
    check_config(*result.value);
  return 0;
}
