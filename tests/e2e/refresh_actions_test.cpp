// make_refresh_action against real processes: signals through pidfiles,
// commands run without a shell, and memcached re-reading its auth file on
// SIGHUP.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "memcached_cfg/refresh/refresh_actions.hpp"
#include "support/memcached_client.hpp"
#include "support/memcached_server.hpp"
#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

refresh_signal signal_spec(int sig, const char* name,
                           const std::string& pidfile) {
  refresh_signal out;
  out.signal = sig;
  out.name = name;
  out.pidfile = pidfile;
  return out;
}

refresh_command command_spec(std::vector<std::string> argv) {
  refresh_command out;
  out.argv = std::move(argv);
  return out;
}

bool killed_by(const std::optional<int>& status, int sig) {
  return status && WIFSIGNALED(*status) && WTERMSIG(*status) == sig;
}

/// What an action said: empty on success, else its failure's message.
std::string said(const result<void>& r) {
  return r ? std::string{} : r.error().message;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

/// Replaces `path` the way the writer does: a temp file renamed over it.
void replace_file(const std::string& path, const std::string& text) {
  write_text(path + ".tmp", text);
  std::filesystem::rename(path + ".tmp", path);
}

} // namespace

TEST_CASE("refresh_none gives no action") {
  auto action = make_refresh_action(refresh_spec{refresh_none{}});
  CHECK_FALSE(static_cast<bool>(action));
}

TEST_SUITE("signal refresh") {
  TEST_CASE("the pid in the pidfile gets the configured signal") {
    temp_dir dir;
    child_process target{{"sleep", "30"}};
    write_text(dir / "target.pid", std::to_string(target.pid()) + "\n");
    auto action = make_refresh_action(
      refresh_spec{signal_spec(SIGTERM, "SIGTERM", dir / "target.pid")});
    REQUIRE(static_cast<bool>(action));
    CHECK(said(action()) == "");
    auto status = target.wait_exit(5s);
    // It died of exactly the signal configured, not of another one.
    CHECK(killed_by(status, SIGTERM));
  }

  TEST_CASE("whitespace around the pid is allowed") {
    temp_dir dir;
    child_process target{{"sleep", "30"}};
    write_text(dir / "target.pid",
               " \t\n" + std::to_string(target.pid()) + " \r\n\n");
    auto action = make_refresh_action(
      refresh_spec{signal_spec(SIGUSR1, "SIGUSR1", dir / "target.pid")});
    CHECK(said(action()) == "");
    CHECK(killed_by(target.wait_exit(5s), SIGUSR1));
  }

  TEST_CASE(
    "a missing pidfile is an error naming it, and nothing is signalled") {
    temp_dir dir;
    child_process bystander{{"sleep", "30"}};
    auto path = dir / "nosuch.pid";
    auto action = make_refresh_action(
      refresh_spec{signal_spec(SIGTERM, "SIGTERM", path)});
    CHECK(said(action()) == "pidfile " + path + ": No such file or directory");
    CHECK_FALSE(bystander.wait_exit(100ms).has_value());
    // An action is reusable: the same error again, not a crash or a cache.
    CHECK(said(action()) == "pidfile " + path + ": No such file or directory");
  }

  TEST_CASE("a pidfile without a positive integer in it holds no pid") {
    temp_dir dir;
    child_process bystander{{"sleep", "30"}};
    auto pid = std::to_string(bystander.pid());
    auto path = dir / "bad.pid";
    auto action = make_refresh_action(
      refresh_spec{signal_spec(SIGTERM, "SIGTERM", path)});
    std::vector<std::string> contents{"",
                                      " \n",
                                      "abc",
                                      pid + "x",
                                      "x" + pid,
                                      "-" + pid,
                                      "+" + pid,
                                      pid + " 1",
                                      "0",
                                      "00",
                                      "99999999999999999999",
                                      "2147483648",
                                      pid + ".0",
                                      std::string(70, ' ') + pid};
    for (auto& content : contents) {
      CAPTURE(content);
      write_text(path, content);
      CHECK(said(action()) == "pidfile " + path + " does not hold a pid");
    }
    // None of those reached the process whose pid was in most of them.
    CHECK_FALSE(bystander.wait_exit(100ms).has_value());
  }

  TEST_CASE("a pidfile that is no regular file is refused without blocking") {
    temp_dir dir;
    auto fifo = dir / "fifo.pid";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto started = std::chrono::steady_clock::now();
    CHECK(said(send_refresh_signal(signal_spec(SIGHUP, "SIGHUP", fifo)))
          == "pidfile " + fifo + " is not a regular file");
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    CHECK(said(send_refresh_signal(
            signal_spec(SIGHUP, "SIGHUP", dir.path.string())))
          == "pidfile " + dir.path.string() + " is not a regular file");
  }

  TEST_CASE("a pid that is gone is an error naming pid and pidfile") {
    temp_dir dir;
    pid_t dead = 0;
    {
      child_process gone{{"true"}};
      REQUIRE(gone.wait_exit(5s).has_value()); // reaped: the pid is free
      dead = gone.pid();
    }
    auto path = dir / "dead.pid";
    write_text(path, std::to_string(dead) + "\n");
    auto action = make_refresh_action(
      refresh_spec{signal_spec(SIGHUP, "SIGHUP", path)});
    CHECK(said(action())
          == "pid " + std::to_string(dead) + " from " + path
               + ": No such process");
  }

  TEST_CASE("pid 1 and the node's own pid are refused, and nothing is "
            "signalled") {
    temp_dir dir;
    auto path = dir / "stale.pid";
    write_text(path, "1\n");
    // Refused before any attempt: not the EPERM a signal to init would get.
    CHECK(said(send_refresh_signal(signal_spec(SIGHUP, "SIGHUP", path)))
          == "pid 1 from " + path + " is init; refusing to signal it");
    // Blocked here, a signal sent to this process would stay pending.
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigset_t old;
    REQUIRE(pthread_sigmask(SIG_BLOCK, &usr1, &old) == 0);
    auto own = std::to_string(::getpid());
    write_text(path, own + "\n");
    CHECK(said(send_refresh_signal(signal_spec(SIGUSR1, "SIGUSR1", path)))
          == "pid " + own + " from " + path
               + " is mcfgd itself; refusing to signal it");
    sigset_t pending;
    sigemptyset(&pending);
    REQUIRE(sigpending(&pending) == 0);
    CHECK_FALSE(sigismember(&pending, SIGUSR1));
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  TEST_CASE("with expect set, a pid of another program is refused and left "
            "alone, while the expected program is signalled") {
    temp_dir dir;
    child_process other{{"sleep", "30"}};
    auto path = dir / "reused.pid";
    write_text(path, std::to_string(other.pid()) + "\n");
    auto spec = signal_spec(SIGTERM, "SIGTERM", path);
    spec.expect = "memcached";
    auto exe = std::filesystem::read_symlink(
      "/proc/" + std::to_string(other.pid()) + "/exe");
    CHECK(said(send_refresh_signal(spec))
          == "pid " + std::to_string(other.pid()) + " from " + path
               + " is sleep (" + exe.string()
               + "), not memcached; not signalled");
    CHECK_FALSE(other.wait_exit(200ms).has_value());
    spec.expect = "sleep";
    CHECK(said(send_refresh_signal(spec)) == "");
    CHECK(killed_by(other.wait_exit(5s), SIGTERM));
  }

  TEST_CASE("a pidfile that root does not own speaks only for its owner's "
            "processes") {
    if (::geteuid() != 0) {
      MESSAGE("skipped: needs root (to chown the pidfile, to run as nobody)");
      return;
    }
    temp_dir dir;
    child_process roots{{"sleep", "30"}};
    auto path = dir / "other.pid";
    write_text(path, std::to_string(roots.pid()) + "\n");
    REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
    auto spec = signal_spec(SIGTERM, "SIGTERM", path);
    CHECK(said(send_refresh_signal(spec))
          == "pid " + std::to_string(roots.pid()) + " from " + path
               + " runs as uid 0, but the pidfile belongs to uid 65534; not "
                 "signalled");
    CHECK_FALSE(roots.wait_exit(200ms).has_value());
    // A process of the pidfile's owner is signalled.
    child_process nobodys{{"setpriv", "--reuid=65534", "--regid=65534",
                           "--clear-groups", "sleep", "30"}};
    // setpriv changes its uid, then becomes sleep: wait for sleep.
    auto comm = "/proc/" + std::to_string(nobodys.pid()) + "/comm";
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (read_file(comm) != "sleep\n"
           && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    write_text(path, std::to_string(nobodys.pid()) + "\n");
    REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
    CHECK(said(send_refresh_signal(spec)) == "");
    CHECK(killed_by(nobodys.wait_exit(5s), SIGTERM));
  }

  TEST_CASE("memcached started without an auth file is not sent SIGHUP, "
            "which would stop it") {
    REQUIRE_MESSAGE(memcached_installed(),
                    "memcached is not installed (apt-get install memcached)");
    temp_dir dir;
    auto port = std::to_string(free_loopback_port());
    std::vector<std::string> args{"/usr/bin/memcached", "-p", port, "-l",
                                  "127.0.0.1"};
    if (::geteuid() == 0)
      args.insert(args.end(), {"-u", "nobody"});
    child_process plain{args};
    auto path = dir / "memcached.pid";
    write_text(path, std::to_string(plain.pid()) + "\n");
    auto spec = signal_spec(SIGHUP, "SIGHUP", path);
    spec.expect = "memcached";
    CHECK(said(send_refresh_signal(spec))
          == "pid " + std::to_string(plain.pid()) + " from " + path
               + " is memcached without an auth file (-Y): SIGHUP would "
                 "stop it; not signalled");
    CHECK_FALSE(plain.wait_exit(300ms).has_value());
    // The same memcached answers on its port: it was left alone.
    CHECK(loopback_accepts(static_cast<uint16_t>(std::stoi(port)), 2s));
  }

} // TEST_SUITE("signal refresh")

TEST_SUITE("command refresh") {
  TEST_CASE("a command that exits 0 succeeds, and has run by the time it "
            "returns") {
    temp_dir dir;
    auto out = dir / "out";
    auto action = make_refresh_action(refresh_spec{
      command_spec({"sh", "-c", "sleep 0.2; echo ran >> \"$0\"", out})});
    REQUIRE(static_cast<bool>(action));
    CHECK(said(action()) == "");
    // Waited for: the output is there at once, written exactly once.
    CHECK(read_file(out) == "ran\n");
  }

  TEST_CASE("a command runs without a shell") {
    temp_dir dir;
    auto odd = dir / "a;touch b $HOME `id`";
    auto action = make_refresh_action(
      refresh_spec{command_spec({"touch", odd})});
    CHECK(said(action()) == "");
    CHECK(std::filesystem::exists(odd));
    CHECK_FALSE(std::filesystem::exists(dir / "b"));
    CHECK(std::distance(std::filesystem::directory_iterator{dir.path},
                        std::filesystem::directory_iterator{})
          == 1);
  }

  TEST_CASE("a command reads /dev/null, inherits no other descriptor and no "
            "blocked signal") {
    temp_dir dir;
    auto out = dir / "out";
    // A descriptor the node might hold, without O_CLOEXEC.
    int held = ::open(dir.path.c_str(), O_RDONLY);
    REQUIRE(held >= 0);
    REQUIRE(::dup2(held, 200) == 200);
    ::close(held);
    // A signal the calling thread blocks.
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    REQUIRE(::pthread_sigmask(SIG_BLOCK, &term, &old) == 0);
    // Each probe `exec`s, so it reads what the command itself was given, not
    // the state of a shell that blocks signals around its own forks.
    auto probe = [&](const std::string& script) {
      auto result = said(
        run_refresh_command(command_spec({"sh", "-c", script, out})));
      CHECK(result == "");
      return read_file(out);
    };
    auto stdin_target = probe("exec readlink /proc/self/fd/0 > \"$0\"");
    auto fds = probe("exec ls /proc/self/fd > \"$0\"");
    auto mask = probe("exec grep SigBlk /proc/self/status > \"$0\"");
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::close(200);
    CHECK(stdin_target == "/dev/null\n");
    CAPTURE(fds);
    CHECK(("\n" + fds).find("\n200\n") == std::string::npos);
    CHECK(mask == "SigBlk:\t0000000000000000\n");
  }

  TEST_CASE("a non-zero exit is an error naming the command and the status") {
    auto action = make_refresh_action(
      refresh_spec{command_spec({"sh", "-c", "exit 3"})});
    CHECK(said(action())
          == "command `sh` with 2 arguments exited with status 3");
    CHECK(said(run_refresh_command(command_spec({"false"})))
          == "command `false` exited with status 1");
  }

  TEST_CASE("a command killed by a signal is an error naming the signal") {
    CHECK(said(run_refresh_command(command_spec({"sh", "-c", "kill -TERM $$"})))
          == "command `sh` with 2 arguments killed by signal 15");
  }

  TEST_CASE("a command that cannot be started is an error naming it and why") {
    temp_dir dir;
    CHECK(
      said(run_refresh_command(command_spec({"mcfg-no-such-command", "--x"})))
      == "command `mcfg-no-such-command` with 1 argument: No such file or "
         "directory");
    auto absent = dir / "absent";
    CHECK(said(run_refresh_command(command_spec({absent})))
          == "command `" + absent + "`: No such file or directory");
    auto plain = dir / "not-executable";
    write_text(plain, "#!/bin/sh\nexit 0\n");
    ::chmod(plain.c_str(), 0644);
    // No x bit at all: refused even to root.
    CHECK(said(run_refresh_command(command_spec({plain})))
          == "command `" + plain + "`: Permission denied");
    CHECK(said(run_refresh_command(command_spec({}))) == "command is empty");
  }

  TEST_CASE("a command past its timeout is killed with what it started") {
    temp_dir dir;
    auto pidfile = dir / "grandchild.pid";
    auto started = std::chrono::steady_clock::now();
    auto result = said(run_refresh_command(
      command_spec({"sh", "-c", "sleep 30 & echo $! > \"$0\"; wait", pidfile}),
      300ms));
    auto took = std::chrono::steady_clock::now() - started;
    CHECK(result
          == "command `sh` with 3 arguments timed out after 300ms; killed");
    CHECK(took >= 300ms);
    CHECK(took < 5s);
    auto grandchild = static_cast<pid_t>(std::stol(read_file(pidfile)));
    CHECK(wait_gone(grandchild, 5s));
  }

  TEST_CASE("a command under way when the node stops is killed with what it "
            "started, long before its timeout") {
    temp_dir dir;
    auto pidfile = dir / "grandchild.pid";
    auto stopping = std::make_shared<std::atomic<bool>>(false);
    auto action = make_refresh_action(
      refresh_spec{command_spec(
        {"sh", "-c", "sleep 30 & echo $! > \"$0\"; wait", pidfile})},
      60s, stopping);
    auto started = std::chrono::steady_clock::now();
    std::thread stopper{[&] {
      std::this_thread::sleep_for(300ms);
      stopping->store(true);
    }};
    auto result = said(action());
    auto took = std::chrono::steady_clock::now() - started;
    stopper.join();
    CHECK(result
          == "command `sh` with 3 arguments killed: the node is stopping");
    CHECK(took >= 300ms);
    CHECK(took < 5s);
    auto grandchild = static_cast<pid_t>(std::stol(read_file(pidfile)));
    CHECK(wait_gone(grandchild, 5s));
  }

  TEST_CASE("timeouts in whole seconds read as seconds") {
    auto started = std::chrono::steady_clock::now();
    CHECK(said(run_refresh_command(command_spec({"sleep", "30"}), 1s))
          == "command `sleep` with 1 argument timed out after 1s; killed");
    CHECK(std::chrono::steady_clock::now() - started < 10s);
  }

  TEST_CASE("describe_command shows the program, quoted where a reader "
            "could misread it, and counts the arguments without showing "
            "them") {
    CHECK(describe_command({"systemctl", "reload", "memcached"})
          == "command `systemctl` with 2 arguments");
    CHECK(describe_command({"reload-auth"}) == "command `reload-auth`");
    CHECK(describe_command({"reload", "--password=s3cret"})
          == "command `reload` with 1 argument");
    CHECK(describe_command({"a b", "", "it's"})
          == "command `'a b'` with 2 arguments");
    CHECK(describe_command({"it's"}) == "command `'it'\\''s'`");
    CHECK(describe_command({"reload", "--password=s3cret"}).find("s3cret")
          == std::string::npos);
  }

} // TEST_SUITE("command refresh")

TEST_CASE("SIGHUP through the pidfile makes memcached re-read its auth file") {
  REQUIRE_MESSAGE(memcached_installed(),
                  "memcached is not installed (apt-get install memcached)");
  temp_dir dir;
  auto auth = dir / "memcached.auth";
  write_text(auth, "a:pw1\n");
  ::chmod(auth.c_str(), 0600);
  memcached_options opts;
  opts.auth_file = auth;
  opts.pidfile = dir / "memcached.pid";
  memcached_server server{opts};
  REQUIRE(trimmed(read_file(opts.pidfile)) == std::to_string(server.pid()));

  auto before = try_login(server.port(), "a", "pw1");
  CHECK(before.accepted());
  CHECK(before.session_works);
  CHECK(try_login(server.port(), "a", "pw2").refused());

  replace_file(auth, "a:pw2\n");
  // Without a refresh memcached keeps what it read at start-up.
  CHECK(try_login(server.port(), "a", "pw1").accepted());
  CHECK(try_login(server.port(), "a", "pw2").refused());

  auto action = make_refresh_action(
    refresh_spec{signal_spec(SIGHUP, "SIGHUP", opts.pidfile)});
  REQUIRE(said(action()) == "");

  // memcached applies a SIGHUP on its next clock tick, once a second.
  memcached_login after;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  do {
    after = try_login(server.port(), "a", "pw2");
    if (after.accepted())
      break;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < deadline);
  CHECK(after.accepted());
  CHECK(after.session_works);
  auto old = try_login(server.port(), "a", "pw1");
  CHECK(old.refused());
  CHECK_FALSE(old.session_works);
  // The same daemon, alive: the signal reloaded it, did not stop it.
  CHECK(server.running());
  CHECK(trimmed(read_file(opts.pidfile)) == std::to_string(server.pid()));
}
