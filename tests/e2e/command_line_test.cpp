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
#include <fstream>
#include <memory>
#include <sstream>

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

TEST_CASE("mcfgd --check names a file's verify target and timeout, and "
          "nothing for a file without one") {
  cli_fixture f;
  write_text(f.node_yaml, "source: cluster.yaml\n"
                          "files:\n"
                          "  - module: memcached_passwords\n"
                          "    path: memcached.auth\n"
                          "    refresh: {signal: HUP, pidfile: memcached.pid,\n"
                          "              verify: {memcached: \"[::1]:11211\", "
                          "timeout: 2s}}\n"
                          "  - module: memcached_permissions\n"
                          "    path: permissions.json\n"
                          "    refresh: {command: [\"true\"]}\n");
  auto r = run(f.dir, {MCFGD, "--config", f.node_yaml, "--check"});
  CAPTURE(r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "== " + f.auth
                          + " (memcached_passwords, verify: memcached at "
                            "[::1]:11211 over plain TCP, timeout 2s) ==\n"
                            "alice:********\n"));
  CHECK(contains(r.out, "== " + (f.dir / "permissions.json")
                          + " (memcached_permissions) ==\n"));
  CHECK_FALSE(contains(r.out, "Pw-alice-1"));
  CHECK_FALSE(contains(r.err, "Pw-alice-1"));
  // Only the first file has a verify; --check writes nothing.
  CHECK(r.out.find("verify:") == r.out.rfind("verify:"));
  CHECK_FALSE(fs::exists(f.auth));
  CHECK_FALSE(fs::exists(f.dir / "permissions.json"));
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

TEST_CASE("a running mcfgd is not dumpable, so no core can hold its "
          "passwords") {
  // proc(5): the files in /proc/PID are owned by the process's effective
  // user, except that they are made root:root when its "dumpable" attribute
  // is not 1, the attribute that also decides whether a core is written
  // and whether another process of that user may ptrace it or read its
  // memory. So the owner of /proc/PID/status shows it from outside: mcfgd
  // runs as an unprivileged user here (as root it would be root's either
  // way), and its status file is root's only when mcfgd turned dumping off
  // itself (the exec of a readable binary by a plain user sets it to 1).
  const uid_t nobody = 65534;
  cli_fixture f;
  REQUIRE(::chown(f.dir.path.c_str(), nobody, nobody) == 0);
  for (auto& name : {"cluster.yaml", "node.yaml"})
    REQUIRE(::chown((f.dir / name).c_str(), nobody, nobody) == 0);
  auto err = f.dir / "mcfgd.err";
  child_process mcfgd{{"setpriv", "--reuid=65534", "--regid=65534",
                       "--clear-groups", MCFGD, "--config", f.node_yaml},
                      f.dir / "mcfgd.out",
                      err};
  REQUIRE(eventually(
    [&] { return contains(read_file(err), "ready: 1 files written"); }, 20s));
  struct stat proc_file {};
  auto status = "/proc/" + std::to_string(mcfgd.pid()) + "/status";
  REQUIRE(::stat(status.c_str(), &proc_file) == 0);
  // It is mcfgd running as that user, not setpriv still.
  std::ifstream in{status};
  std::string line;
  uid_t real_uid = 0;
  while (std::getline(in, line))
    if (line.rfind("Uid:", 0) == 0)
      real_uid = static_cast<uid_t>(std::stoul(line.substr(4)));
  CHECK(real_uid == nobody);
  CHECK(read_file(status).find("Name:\tmcfgd") != std::string::npos);
  CHECK(proc_file.st_uid == 0);
  CHECK(proc_file.st_gid == 0);
  mcfgd.signal(SIGTERM);
  CHECK(mcfgd.wait_exit_code(20s) == 0);
  CHECK(read_file(f.auth) == "alice:Pw-alice-1\n");
}

TEST_CASE("a running mcfgctl is not dumpable either") {
  // As above: mcfgctl, as an unprivileged user, waits on a socket that
  // accepts its connection and never answers, while its /proc files are
  // looked at.
  const uid_t nobody = 65534;
  cli_fixture f;
  ::chmod(f.dir.path.c_str(), 0755);
  auto path = f.dir / "silent.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  ::chmod(path.c_str(), 0666);
  child_process ctl{{"setpriv", "--reuid=65534", "--regid=65534",
                     "--clear-groups", MCFGCTL, "--socket", path, "--timeout",
                     "20s", "status"},
                    f.dir / "ctl.out",
                    f.dir / "ctl.err"};
  auto status = "/proc/" + std::to_string(ctl.pid()) + "/status";
  // Connected: the connection waits in the backlog (poll sees it).
  pollfd p{fd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10000) == 1);
  REQUIRE(contains(read_file(status), "Name:\tmcfgctl"));
  CHECK(contains(read_file(status), "Uid:\t65534"));
  struct stat proc_file {};
  REQUIRE(::stat(status.c_str(), &proc_file) == 0);
  CHECK(proc_file.st_uid == 0);
  CHECK(proc_file.st_gid == 0);
  CHECK(proc_file.st_uid != nobody);
  ::close(fd);
  ctl.signal(SIGKILL);
  ctl.wait_exit(5s);
}

TEST_CASE("the systemd unit allows no core file") {
  // This file is tests/e2e/ of the checkout (CMake passes absolute paths).
  auto root = fs::path{__FILE__}.parent_path().parent_path().parent_path();
  auto unit = read_file(root / "packaging/mcfgd.service");
  REQUIRE(unit != "<missing>");
  CHECK(contains(unit, "\nLimitCORE=0\n"));
}

namespace {

/// Sets JOURNAL_STREAM to `path`'s device and inode (the file must exist)
/// while it lives, as systemd does for a service whose stderr is the
/// journal.
struct journal_stream_at {
  explicit journal_stream_at(const std::string& path) {
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    auto stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    ::setenv("JOURNAL_STREAM", stream.c_str(), 1);
  }
  ~journal_stream_at() {
    ::unsetenv("JOURNAL_STREAM");
  }
};

/// Each line of a journal stream starts with a priority mcfgd uses (error,
/// warning, info, debug) and holds no control byte; checks it line by line.
void check_journal_lines(const std::string& text) {
  REQUIRE_FALSE(text.empty());
  CHECK(text.back() == '\n');
  std::istringstream lines{text};
  for (std::string line; std::getline(lines, line);) {
    CAPTURE(line);
    CHECK(line.size() > 3);
    auto prefix = line.substr(0, 3);
    CHECK((prefix == "<3>" || prefix == "<4>" || prefix == "<6>"
           || prefix == "<7>"));
    CHECK((line.compare(3, 1, "[") == 0 || line.compare(3, 7, "mcfgd: ") == 0));
    for (unsigned char c : line)
      CHECK((c >= 0x20 && c != 0x7f));
  }
}

} // namespace

TEST_CASE("a user name with a newline and <0> forges no journal line, at "
          "start or in an edit") {
  cli_fixture f;
  auto evil = std::string{"users:\n"
                          "  \"x\\n<0>evil\\r\\n<1>x\": {password: Pw-evil-1}\n"
                          "  alice: {password: Pw-alice-1}\n"};
  auto source = f.dir / "cluster.yaml";
  auto err = f.dir / "cmd.err";

  // At start: refused as bad configuration, in escaped lines.
  write_text(source, evil);
  write_text(err, "");
  {
    journal_stream_at journal{err};
    auto r = run(f.dir, {MCFGD, "--config", f.node_yaml});
    CHECK(r.exit_code == 2);
  }
  auto at_start = read_file(err);
  check_journal_lines(at_start);
  CHECK(contains(at_start, "users/x\\n<0>evil\\r\\n<1>x: user name"));
  CHECK_FALSE(contains(at_start, "\n<0>"));
  CHECK_FALSE(contains(at_start, "\n<1>"));
  CHECK_FALSE(fs::exists(f.auth));

  // In an edit of a running node: the refusal is one line.
  write_text(source, "users:\n  alice: {password: Pw-alice-1}\n");
  auto node_err = f.dir / "mcfgd.err";
  write_text(node_err, "");
  std::unique_ptr<child_process> mcfgd;
  {
    journal_stream_at journal{node_err};
    mcfgd = std::make_unique<child_process>(
      std::vector<std::string>{MCFGD, "--config", f.node_yaml},
      f.dir / "mcfgd.out", node_err, true);
  }
  REQUIRE(eventually(
    [&] { return contains(read_file(node_err), "ready: 1 files written"); },
    20s));
  write_atomically(source, evil);
  REQUIRE(eventually(
    [&] { return contains(read_file(node_err), "edit refused"); }, 20s));
  mcfgd->signal(SIGTERM);
  CHECK(mcfgd->wait_exit_code(20s) == 0);
  auto running = read_file(node_err);
  check_journal_lines(running);
  size_t refusals = 0;
  std::istringstream lines{running};
  for (std::string line; std::getline(lines, line);)
    if (contains(line, "edit refused")) {
      ++refusals;
      CHECK(line.rfind("<3>[error] file_store ", 0) == 0);
      CHECK(contains(line, "users/x\\n<0>evil\\r\\n<1>x: user name"));
    }
  CHECK(refusals == 1);
  CHECK(read_file(f.auth) == "alice:Pw-alice-1\n");
  CHECK_FALSE(contains(at_start + running, "Pw-"));
}
