// The programs' command-line conventions (CLI11) and mcfgd's readiness
// notification for systemd, on the real binaries. Time is real here; every
// wait is bounded.
#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstdlib>
#include <filesystem>

#include "node_harness.hpp"
#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A datagram socket standing in for systemd's notification socket.
class notify_socket {
public:
  explicit notify_socket(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path_.size() < sizeof(addr.sun_path));
    path_.copy(addr.sun_path, path_.size());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~notify_socket() {
    ::close(fd_);
  }
  const std::string& path() const {
    return path_;
  }
  /// The next datagram within `timeout`; nothing if none came.
  std::optional<std::string> receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1)
      return std::nullopt;
    char buf[4096];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0)
      return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }

private:
  std::string path_;
  int fd_ = -1;
};

struct cli_fixture {
  temp_dir dir;
  std::string node_yaml = dir / "node.yaml";
  std::string auth = dir / "memcached.auth";

  cli_fixture() {
    write_text(dir / "cluster.yaml",
               "users:\n  alice: {password: Pw-alice-1}\n");
    write_text(node_yaml, "source: cluster.yaml\n"
                          "retry: {interval: 100ms, deadline: 10s}\n"
                          "files:\n"
                          "  - module: memcached_passwords\n"
                          "    path: memcached.auth\n");
  }
};

} // namespace

TEST_CASE("--version prints the project's version and git revision, in "
          "both programs") {
  cli_fixture f;
  for (auto [program, name] :
       {std::pair{MCFGD, "mcfgd"}, std::pair{MCFGCTL, "mcfgctl"}}) {
    CAPTURE(name);
    auto r = run(f.dir, {program, "--version"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.rfind(std::string{name} + " " + MCFG_VERSION + " (git ", 0)
          == 0);
    CHECK(r.out.back() == '\n');
    CHECK_FALSE(contains(r.out, "(git )"));
    CHECK(r.err.empty());
  }
}

TEST_CASE("mcfgd --help explains every option and the exit codes") {
  cli_fixture f;
  auto r = run(f.dir, {MCFGD, "--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  for (auto option : {"-c,--config FILE", "--check", "--log-level LEVEL",
                      "--version", "-h,--help"})
    CHECK_MESSAGE(contains(r.out, option), option);
  // Each option's explanation, not just its name.
  CHECK(contains(r.out, "The node's configuration (node.yaml)"));
  CHECK(contains(r.out, "write nothing"));
  CHECK(contains(r.out, "error,warning,info,debug"));
  CHECK(contains(r.out, "Exit codes:"));
  CHECK(contains(r.out, "2  bad usage or bad configuration"));
  // --help does nothing else: no file is written.
  CHECK_FALSE(fs::exists(f.auth));
}

TEST_CASE("mcfgd: bad usage exits 2 naming the problem, writing nothing") {
  cli_fixture f;
  struct bad {
    std::vector<std::string> args;
    std::string says;
  };
  for (auto& x : std::vector<bad>{
         {{"--config", f.node_yaml, "--frobnicate"}, "--frobnicate"},
         {{}, "--config is required"},
         {{"--config"}, "--config"},
         {{"--config", f.node_yaml, "--log-level", "loud"}, "loud"},
         {{"--config", f.node_yaml, "extra"}, "extra"}}) {
    auto args = x.args;
    args.insert(args.begin(), MCFGD);
    auto r = run(f.dir, args);
    CAPTURE(x.says);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, x.says));
    CHECK(contains(r.err, "--help"));
    CHECK(r.out.empty());
  }
  CHECK_FALSE(fs::exists(f.auth));
}

TEST_CASE("mcfgd tells systemd READY=1 only once every file is written") {
  cli_fixture f;
  notify_socket systemd{f.dir / "notify"};
  // While the file's path is a non-empty directory, no write can succeed.
  block_with_directory(f.auth);
  ::setenv("NOTIFY_SOCKET", systemd.path().c_str(), 1);
  child_process mcfgd{
    {MCFGD, "--config", f.node_yaml}, f.dir / "mcfgd.out", f.dir / "mcfgd.err"};
  ::unsetenv("NOTIFY_SOCKET");

  // The writer fails and keeps retrying (deadline 10 s): not ready meanwhile.
  REQUIRE(eventually(
    [&] { return contains(read_file(f.dir / "mcfgd.err"), "retrying every"); },
    10s));
  CHECK_FALSE(systemd.receive(1s).has_value());
  CHECK(process_alive(mcfgd.pid()));

  fs::remove_all(f.auth);
  auto ready = systemd.receive(10s);
  REQUIRE(ready.has_value());
  // Read at once: the file was written before the notification was sent.
  CHECK(read_file(f.auth) == "alice:Pw-alice-1\n");
  CHECK(contains(*ready, "READY=1"));
  CHECK(contains(*ready, "STATUS=1 files written"));
  CHECK_FALSE(contains(*ready, "Pw-alice-1"));

  // Exactly one READY.
  CHECK_FALSE(systemd.receive(300ms).has_value());
  mcfgd.signal(SIGTERM);
  CHECK(mcfgd.wait_exit_code(20s) == 0);
  CHECK(contains(read_file(f.dir / "mcfgd.err"), "ready: 1 files written"));
}

TEST_CASE("with stderr the journal, mcfgd's error lines carry priority 3") {
  cli_fixture f;
  write_text(f.node_yaml, "source: missing.yaml\n"
                          "files:\n"
                          "  - module: memcached_passwords\n"
                          "    path: memcached.auth\n");
  // run() sends stderr to cmd.err, truncating it: the inode stays the same.
  auto err = f.dir / "cmd.err";
  write_text(err, "");
  struct stat st;
  REQUIRE(::stat(err.c_str(), &st) == 0);
  auto stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  ::setenv("JOURNAL_STREAM", stream.c_str(), 1);
  auto journal = run(f.dir, {MCFGD, "--config", f.node_yaml});
  ::unsetenv("JOURNAL_STREAM");
  CHECK(journal.exit_code == 2);
  CHECK(journal.err.rfind("<3>mcfgd: ", 0) == 0);
  CHECK(contains(journal.err, "missing.yaml"));
  CHECK(
    contains(journal.err, "\n<3>mcfgd: bad configuration, nothing written\n"));

  // The same run outside the journal: the lines as they always were.
  auto plain = run(f.dir, {MCFGD, "--config", f.node_yaml});
  CHECK(plain.exit_code == 2);
  CHECK(plain.err.rfind("mcfgd: ", 0) == 0);
  CHECK_FALSE(contains(plain.err, "<3>"));
}

TEST_CASE("mcfgctl --help explains every option, command and exit code") {
  cli_fixture f;
  auto r = run(f.dir, {MCFGCTL, "--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  for (auto part : {"--config FILE",
                    "--socket PATH",
                    "--node HOST:PORT",
                    "--token-file FILE",
                    "--cacert PEM",
                    "--timeout DURATION",
                    "--version",
                    "-h,--help",
                    "status",
                    "sync",
                    "reload",
                    "health",
                    "import",
                    "export",
                    "cluster",
                    "--endpoints URL[,URL...]",
                    "--password-file FILE",
                    "Exit codes:",
                    "2  bad usage",
                    "Give up after this long"})
    CHECK_MESSAGE(contains(r.out, part), part);
  // A command's own help: its argument and options.
  auto sync = run(f.dir, {MCFGCTL, "sync", "--help"});
  CHECK(sync.exit_code == 0);
  CHECK(contains(sync.out, "FILE"));
  CHECK(contains(sync.out, "--version N"));
  CHECK(contains(sync.out, "Wait for this version of the source"));
  CHECK(contains(sync.out, "--cluster"));
  CHECK(contains(sync.out, "--revision R"));
}

TEST_CASE("mcfgctl: bad usage exits 2 naming the problem, reaching no node") {
  cli_fixture f;
  auto sock = f.dir / "no.sock";
  std::string etcd = "http://127.0.0.1:1";
  struct bad {
    std::vector<std::string> args;
    std::string says;
  };
  for (auto& x : std::vector<bad>{
         {{"status"}, "node"},
         {{"--socket", sock, "--config", f.node_yaml, "status"}, "node"},
         {{"--socket", sock},
          "a command (status, sync, reload, health, import, export or "
          "cluster status)"},
         {{"--socket", sock, "frobnicate"}, "frobnicate"},
         {{"--socket", sock, "status", "extra"}, "extra"},
         {{"--socket", sock, "reload", "--json"}, "--json"},
         {{"--socket", sock, "sync", "--version", "-1"}, "-1"},
         {{"--socket", sock, "sync", "--version", "x"}, "x"},
         {{"--socket", sock, "--timeout", "0s", "status"}, "0s"},
         {{"--socket", sock, "--timeout", "soon", "status"}, "soon"},
         {{"--node", "127.0.0.1:1", "status"}, "--token-file"},
         {{"--node", "nowhere", "--token-file", sock, "status"}, "nowhere"},
         {{"--socket", sock, "--cacert", sock, "status"}, "--node"},
         // The cluster commands talk to etcd, the others to a node.
         {{"--socket", sock, "import", "users.yaml"}, "talks to etcd"},
         {{"--socket", sock, "sync", "--cluster"}, "talks to etcd"},
         {{"--endpoints", etcd, "status"}, "talks to a node"},
         {{"--config", f.node_yaml, "export"}, "its source is a file"},
         {{"--endpoints", etcd, "import"}, "FILE"},
         {{"--endpoints", etcd, "cluster"}, "cluster: a command (status)"},
         {{"--endpoints", etcd, "cluster", "stats"}, "stats"},
         {{"--endpoints", etcd, "sync", "--cluster", "--version", "3"},
          "--version"},
         {{"--endpoints", etcd, "sync", "--revision", "3"}, "--cluster"},
         {{"--endpoints", etcd, "sync", "--cluster", "--revision", "0"}, "0"},
         {{"--endpoints", etcd, "--user", "u", "export"}, "--password-file"},
         {{"--endpoints", etcd, "--cert", "c.pem", "export"}, "--key"},
         {{"--endpoints", etcd, "--prefix", "/no-slash", "export"},
          "--prefix must end with '/'"}}) {
    auto args = x.args;
    args.insert(args.begin(), MCFGCTL);
    auto r = run(f.dir, args);
    CAPTURE(x.says);
    CAPTURE(r.err);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, x.says));
    CHECK(r.out.empty());
    // Rejected before any connection: not the "cannot reach" of exit 1.
    CHECK_FALSE(contains(r.err, "cannot reach"));
  }
}
