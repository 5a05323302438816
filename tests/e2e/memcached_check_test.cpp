// The memcached consumer check against a real memcached (Debian's 1.6.18,
// `-Y FILE`, on loopback, as nobody when the tests run as root): its
// probes agree with what memcached lets in before and after a SIGHUP and
// the reload tick that follows it; a file memcached refuses or cannot read
// is reported as such; and servers that are not an auth-enabled memcached
// (nothing listening, no -Y, silence, a reset) make it unreachable without
// a password sent where it should not go. Real time: outcomes are polled
// in bounded loops, since memcached reloads on its own once-a-second tick.
#include <doctest/doctest.h>

#include <sys/fsuid.h>

#include <optional>

#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "memcached_cfg/refresh/memcached_check.hpp"
#include "support/memcached_client.hpp"
#include "support/memcached_server.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// Writes `text` beside `path` with `mode` and renames it into place, as
/// the writer does.
void replace_file(const std::string& path, const std::string& text,
                  mode_t mode = 0644) {
  auto tmp = path + ".tmp";
  write_text(tmp, text);
  REQUIRE(::chmod(tmp.c_str(), mode) == 0);
  REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0);
}

struct checked_memcached {
  temp_dir dir;
  std::string auth = dir / "memcached.auth";
  std::unique_ptr<memcached_server> server;
  std::unique_ptr<consumer_check> check;

  explicit checked_memcached(const std::string& initial) {
    REQUIRE_MESSAGE(memcached_installed(),
                    "memcached is not installed (apt-get install memcached)");
    // As root, memcached runs as nobody, who must reach the file.
    REQUIRE(::chmod(dir.path.c_str(), 0755) == 0);
    replace_file(auth, initial);
    memcached_options opts;
    opts.auth_file = auth;
    if (::geteuid() == 0)
      opts.extra_args = {"-u", "nobody"}; // the last -u wins
    server = std::make_unique<memcached_server>(opts);
    check = make_memcached_check(address(), server->pidfile());
  }

  std::string address() const {
    return "127.0.0.1:" + std::to_string(server->port());
  }

  void hup() {
    REQUIRE(::kill(server->pid(), SIGHUP) == 0);
  }

  /// again() every 50 ms until it returns `want` or `limit` passes; every
  /// outcome seen, in order.
  std::vector<check_outcome> poll_until(check_verdict want,
                                        std::chrono::milliseconds limit = 3s) {
    std::vector<check_outcome> seen;
    auto deadline = std::chrono::steady_clock::now() + limit;
    do {
      std::this_thread::sleep_for(50ms);
      seen.push_back(check->again());
    } while (seen.back().verdict != want
             && std::chrono::steady_clock::now() < deadline);
    return seen;
  }

  bool lets_in(const std::string& user, const std::string& password) {
    return try_login(server->port(), user, password).accepted();
  }
};

/// Every outcome but the last is `before`, the last `after`.
void check_sequence(const std::vector<check_outcome>& seen,
                    check_verdict before, check_verdict after) {
  REQUIRE_FALSE(seen.empty());
  for (size_t i = 0; i + 1 < seen.size(); ++i) {
    CAPTURE(seen[i].detail);
    CHECK(seen[i].verdict == before);
  }
  CAPTURE(seen.back().detail);
  CHECK(seen.back().verdict == after);
}

/// A TCP listener on 127.0.0.1 whose every connection `serve` handles, on
/// a thread of its own; what clients sent is kept.
class fake_server {
public:
  using handler = std::function<void(int fd, std::string& received)>;

  /// `owner`: the uid the kernel lists as the owner of the connections it
  /// accepts (its thread's fs uid, which accept() gives each new socket;
  /// needs root).
  explicit fake_server(handler serve, std::optional<uid_t> owner = {})
    : serve_(std::move(serve)), owner_(owner) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread{[this] { run(); }};
  }

  ~fake_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string address() const {
    return "127.0.0.1:" + std::to_string(port_);
  }

  std::string received() {
    std::lock_guard<std::mutex> guard{mtx_};
    return received_;
  }

private:
  void run() {
    if (owner_)
      ::setfsuid(*owner_);
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) != 1)
        continue;
      int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0)
        continue;
      std::string got;
      serve_(conn, got);
      ::close(conn);
      std::lock_guard<std::mutex> guard{mtx_};
      received_ += got;
    }
  }

  handler serve_;
  std::optional<uid_t> owner_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mtx_;
  std::string received_;
};

/// Reads what the client sends until it closes or is quiet for `quiet`.
void read_until_quiet(int fd, std::string& received,
                      std::chrono::milliseconds quiet = 400ms) {
  char buf[512];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(quiet.count())) != 1)
      return;
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
      return;
    received.append(buf, static_cast<size_t>(n));
  }
}

} // namespace

TEST_SUITE("memcached check") {
  TEST_CASE("an added user is confirmed only once memcached reloads") {
    checked_memcached m{"alice:pw-a\n"};
    auto first = m.check->start(m.auth);
    CAPTURE(first.detail);
    CHECK(first.verdict == check_verdict::confirmed);

    replace_file(m.auth, "alice:pw-a\nbob:pw-b\n");
    // Not signalled yet: memcached still holds the old table.
    auto before = m.check->start(m.auth);
    CHECK(before.verdict == check_verdict::disagrees);
    CHECK(before.detail == "memcached still refuses new user bob");
    CHECK_FALSE(m.lets_in("bob", "pw-b"));

    m.hup();
    check_sequence(m.poll_until(check_verdict::confirmed),
                   check_verdict::disagrees, check_verdict::confirmed);
    CHECK(m.lets_in("bob", "pw-b"));
    CHECK(m.lets_in("alice", "pw-a"));
  }

  TEST_CASE("a removed user and a replaced password are refused once "
            "memcached reloads, and the detail names no password") {
    checked_memcached m{"alice:pw-a\nbob:pw-b\n"};
    REQUIRE(m.check->start(m.auth).verdict == check_verdict::confirmed);

    replace_file(m.auth, "alice:pw-a2\n");
    auto before = m.check->start(m.auth);
    CHECK(before.verdict == check_verdict::disagrees);
    CHECK(before.detail
          == "memcached still lets in alice's replaced password; still lets "
             "in removed user bob; still refuses user alice's new password");
    CHECK_FALSE(contains(before.detail, "pw-"));

    m.hup();
    auto seen = m.poll_until(check_verdict::confirmed);
    check_sequence(seen, check_verdict::disagrees, check_verdict::confirmed);
    for (auto& outcome : seen)
      CHECK_FALSE(contains(outcome.detail, "pw-"));
    CHECK_FALSE(m.lets_in("bob", "pw-b"));
    CHECK_FALSE(m.lets_in("alice", "pw-a"));
    CHECK(m.lets_in("alice", "pw-a2"));
  }

  TEST_CASE("in every round the confirmed outcome agrees with logins tried "
            "at once after it") {
    checked_memcached m{"alice:a1\n"};
    REQUIRE(m.check->start(m.auth).verdict == check_verdict::confirmed);
    struct round {
      std::string file;
      std::vector<std::pair<std::string, std::string>> in, out;
    };
    std::vector<round> rounds{
      {"alice:a1\nbob:b1\ncarol:c1\n", {{"bob", "b1"}, {"carol", "c1"}}, {}},
      {"alice:a2\ncarol:c1\n",
       {{"alice", "a2"}},
       {{"alice", "a1"}, {"bob", "b1"}}},
      {"carol:c2\n", {{"carol", "c2"}}, {{"alice", "a2"}, {"carol", "c1"}}},
    };
    for (size_t i = 0; i < rounds.size(); ++i) {
      CAPTURE(i);
      replace_file(m.auth, rounds[i].file);
      REQUIRE(m.check->start(m.auth).verdict == check_verdict::disagrees);
      // Signal at a different point of memcached's clock each round.
      std::this_thread::sleep_for(std::chrono::milliseconds(300 * i));
      m.hup();
      auto seen = m.poll_until(check_verdict::confirmed);
      REQUIRE(seen.back().verdict == check_verdict::confirmed);
      for (auto& [user, password] : rounds[i].in)
        CHECK(m.lets_in(user, password));
      for (auto& [user, password] : rounds[i].out)
        CHECK_FALSE(m.lets_in(user, password));
    }
  }

  TEST_CASE("the same bytes renamed again (a reload, a restarted writer) "
            "are confirmed by trying their logins, and an empty file is "
            "unverifiable") {
    checked_memcached m{"alice:pw-a\n"};
    REQUIRE(m.check->start(m.auth).verdict == check_verdict::confirmed);
    replace_file(m.auth, "alice:pw-a\n");
    CHECK(m.check->start(m.auth).verdict == check_verdict::confirmed);
    CHECK(m.check->again().verdict == check_verdict::confirmed);
    CHECK(m.lets_in("alice", "pw-a"));
    // An empty table: no login to try, so nothing can be shown.
    auto empty = make_memcached_check(m.address(), "");
    replace_file(m.auth, "");
    auto out = empty->start(m.auth);
    CHECK(out.verdict == check_verdict::unverifiable);
    CHECK(out.detail.find("no probe can tell") != std::string::npos);
  }

  TEST_CASE("a file memcached refuses to load disagrees with the reason, "
            "and memcached keeps its users") {
    checked_memcached m{"alice:pw-a\n"};
    REQUIRE(m.check->start(m.auth).verdict == check_verdict::confirmed);
    replace_file(m.auth, "alice:pw-a\n\nbob:pw-b\n");
    auto out = m.check->start(m.auth);
    CHECK(out.verdict == check_verdict::disagrees);
    CHECK(out.detail
          == "memcached would refuse " + m.auth
               + ": line 2 has no ':' (a blank line, a line without one, or a "
                 "NUL byte before it): memcached refuses the whole file; it "
                 "keeps its previous users (it still lets in alice)");
    m.hup();
    // Past two reload ticks, memcached still holds the old table.
    auto seen = m.poll_until(check_verdict::confirmed, 2200ms);
    for (auto& outcome : seen)
      CHECK(outcome.verdict == check_verdict::disagrees);
    CHECK(m.lets_in("alice", "pw-a"));
    CHECK_FALSE(m.lets_in("bob", "pw-b"));
    CHECK(contains(m.check->diagnose(m.auth), "memcached would refuse "));
  }

  TEST_CASE("diagnose names memcached's uid when it cannot read the file") {
    if (::geteuid() != 0) {
      MESSAGE("skipped: needs root to run memcached as another user");
      return;
    }
    auto* nobody = ::getpwnam("nobody");
    REQUIRE(nobody != nullptr);
    checked_memcached m{"alice:pw-a\n"};
    REQUIRE(m.check->start(m.auth).verdict == check_verdict::confirmed);
    CHECK(m.check->diagnose(m.auth).empty());

    replace_file(m.auth, "alice:pw-a\nbob:pw-b\n", 0600); // owner root
    CHECK(m.check->start(m.auth).detail
          == "memcached still refuses new user bob");
    m.hup();
    auto seen = m.poll_until(check_verdict::confirmed, 2200ms);
    for (auto& outcome : seen)
      CHECK(outcome.verdict == check_verdict::disagrees);
    CHECK(m.lets_in("alice", "pw-a"));
    CHECK(m.check->diagnose(m.auth)
          == "memcached (pid " + std::to_string(m.server->pid()) + ", uid "
               + std::to_string(nobody->pw_uid) + ") cannot read " + m.auth
               + " (mode 0600, owner 0:0): it keeps its previous users");
  }

  TEST_CASE("a host name is resolved and each of its addresses tried") {
    checked_memcached m{"alice:pw-a\n"};
    auto check = make_memcached_check(
      "localhost:" + std::to_string(m.server->port()), "");
    auto out = check->start(m.auth);
    CAPTURE(out.detail);
    CHECK(out.verdict == check_verdict::confirmed);
  }

  TEST_CASE("a port where nothing listens is unreachable, naming the "
            "address and the error") {
    temp_dir dir;
    auto auth = dir / "auth";
    write_text(auth, "alice:pw-a\n");
    auto address = "127.0.0.1:" + std::to_string(free_loopback_port());
    auto check = make_memcached_check(address, "");
    auto out = check->start(auth);
    CHECK(out.verdict == check_verdict::unreachable);
    CHECK(out.detail
          == "memcached at " + address + ": connect: Connection refused");
    CHECK(check->again().verdict == check_verdict::unreachable);
    CHECK(check->diagnose(auth).empty());
  }

} // TEST_SUITE

TEST_SUITE("memcached check against servers that are not memcached -Y") {
  TEST_CASE("a server that answers without a login gets no password") {
    fake_server fake{[](int fd, std::string& got) {
      read_until_quiet(fd, got, 100ms);
      const std::string version = "VERSION 1.6.18\r\n";
      (void)::send(fd, version.data(), version.size(), MSG_NOSIGNAL);
      read_until_quiet(fd, got);
    }};
    temp_dir dir;
    auto auth = dir / "auth";
    write_text(auth, "alice:pw-secret\n");
    auto check = make_memcached_check(fake.address(), "");
    auto out = check->start(auth);
    CHECK(out.verdict == check_verdict::unreachable);
    CHECK(contains(out.detail, "no password sent"));
    CHECK_FALSE(contains(out.detail, "pw-secret"));
    // The fake keeps what it got once the check has closed the connection.
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (fake.received().empty()
           && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    CHECK(fake.received() == "version\r\n");
  }

  TEST_CASE("a server of another user on memcached's port that answers "
            "like memcached -Y gets no password") {
    if (::geteuid() != 0) {
      MESSAGE("skipped: needs root to own a socket as another uid");
      return;
    }
    checked_memcached m{"alice:pw-a\n"}; // memcached as nobody, its pidfile
    fake_server fake{
      [](int fd, std::string& got) {
        read_until_quiet(fd, got, 100ms);
        const std::string gate = "CLIENT_ERROR unauthenticated\r\n";
        (void)::send(fd, gate.data(), gate.size(), MSG_NOSIGNAL);
        read_until_quiet(fd, got);
      },
      uid_t{1}};
    temp_dir dir;
    auto auth = dir / "auth";
    write_text(auth, "alice:pw-secret\n");
    auto check = make_memcached_check(fake.address(), m.server->pidfile());
    auto out = check->start(auth);
    CAPTURE(out.detail);
    CHECK(out.verdict == check_verdict::unreachable);
    CHECK(contains(out.detail, "belongs to uid 1, not to root or memcached's "
                               "uid 65534"));
    CHECK(contains(out.detail, "no password sent"));
    CHECK_FALSE(contains(out.detail, "pw-secret"));
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (fake.received().empty()
           && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    CHECK(fake.received() == "version\r\n");
  }

  TEST_CASE("a server that never answers is unreachable within the bound") {
    fake_server fake{
      [](int fd, std::string& got) { read_until_quiet(fd, got, 600ms); }};
    temp_dir dir;
    auto auth = dir / "auth";
    write_text(auth, "alice:pw-a\n");
    auto check = make_memcached_check(fake.address(), "");
    auto t0 = std::chrono::steady_clock::now();
    auto out = check->start(auth);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    CHECK(out.verdict == check_verdict::unreachable);
    CHECK(contains(out.detail, "no reply within 250 ms"));
  }

  TEST_CASE("a server that resets the connection is unreachable, and no "
            "SIGPIPE ends the process") {
    fake_server fake{[](int fd, std::string& got) {
      read_until_quiet(fd, got, 100ms);
      const std::string gate = "CLIENT_ERROR unauthenticated\r\n";
      (void)::send(fd, gate.data(), gate.size(), MSG_NOSIGNAL);
      linger hard{1, 0}; // close with RST
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    }};
    temp_dir dir;
    auto auth = dir / "auth";
    write_text(auth, "alice:pw-a\n");
    auto check = make_memcached_check(fake.address(), "");
    for (int i = 0; i < 5; ++i) {
      auto out = check->start(auth);
      CAPTURE(out.detail);
      CHECK(out.verdict == check_verdict::unreachable);
    }
  }

} // TEST_SUITE
