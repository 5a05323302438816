// The end-to-end helpers against the real daemon: memcached_server starts
// and stops memcached, and memcached_client tells an accepted login from a
// refused one by memcached's own replies.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <string>

#include "support/memcached_client.hpp"
#include "support/memcached_server.hpp"
#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

struct memcached_fixture {
  temp_dir dir;
  std::string auth = dir / "memcached.auth";
  std::unique_ptr<memcached_server> server;

  memcached_fixture() {
    REQUIRE_MESSAGE(memcached_installed(),
                    "memcached is not installed (apt-get install memcached)");
    write_text(auth, "alice:pw-a\nbob:pw-b\n");
    ::chmod(auth.c_str(), 0600);
    memcached_options opts;
    opts.auth_file = auth;
    server = std::make_unique<memcached_server>(opts);
  }
};

} // namespace

TEST_SUITE("memcached smoke") {
  TEST_CASE_FIXTURE(memcached_fixture,
                    "the server runs on loopback and writes its pid") {
    CHECK(server->running());
    CHECK(server->port() != 0);
    CHECK(trimmed(read_file(server->pidfile()))
          == std::to_string(server->pid()));
    CHECK(loopback_accepts(server->port(), 1s));
  }

  TEST_CASE_FIXTURE(memcached_fixture,
                    "a user in the auth file is accepted and "
                    "the session works") {
    memcached_client client{server->port()};
    CHECK(client.authenticate("alice", "pw-a") == "STORED");
    CHECK(client.set("k", "v1") == "STORED");
    CHECK(client.get("k") == std::optional<std::string>{"v1"});
    CHECK(client.get("missing") == std::nullopt);

    auto bob = try_login(server->port(), "bob", "pw-b");
    CHECK(bob.accepted());
    CHECK_FALSE(bob.refused());
    CHECK(bob.session_works);
  }

  TEST_CASE_FIXTURE(memcached_fixture,
                    "a wrong password or an unknown user is "
                    "refused, and the session can do nothing") {
    memcached_client client{server->port()};
    CHECK(client.authenticate("alice", "pw-b")
          == "CLIENT_ERROR authentication failure");
    // Not authenticated: any command but the auth set is refused.
    CHECK(client.command("get k") == "CLIENT_ERROR unauthenticated");
    // A refused connection stays open and may try again.
    CHECK(client.authenticate("alice", "pw-a") == "STORED");
    CHECK(client.set("k", "v") == "STORED");

    for (auto [user, password] :
         {std::pair{"alice", "pw-a2"}, std::pair{"alice", "pw-"},
          std::pair{"carol", "pw-a"}, std::pair{"bob", "pw-a"}}) {
      CAPTURE(user);
      CAPTURE(password);
      auto login = try_login(server->port(), user, password);
      CHECK(login.refused());
      CHECK_FALSE(login.accepted());
      CHECK_FALSE(login.session_works);
    }
  }

  TEST_CASE_FIXTURE(memcached_fixture,
                    "commands before authenticating are refused") {
    memcached_client client{server->port()};
    CHECK(client.command("get k") == "CLIENT_ERROR unauthenticated");
    CHECK(client.command("version") == "CLIENT_ERROR unauthenticated");
  }

  TEST_CASE_FIXTURE(memcached_fixture,
                    "stop ends the daemon and frees the port") {
    auto pid = server->pid();
    auto port = server->port();
    server->stop();
    CHECK_FALSE(server->running());
    CHECK(server->pid() == 0);
    REQUIRE(server->exit_status().has_value());
    CHECK_FALSE(process_alive(pid));
    CHECK_FALSE(loopback_accepts(port, 200ms));
    server->stop(); // idempotent
  }

  TEST_CASE("a server that cannot start says why") {
    REQUIRE_MESSAGE(memcached_installed(),
                    "memcached is not installed (apt-get install memcached)");
    temp_dir dir;
    memcached_options opts;
    opts.auth_file = dir / "absent.auth";
    std::string what;
    try {
      memcached_server server{opts};
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    CAPTURE(what);
    CHECK(what.find("memcached did not start: exited with status") == 0);
    CHECK(what.find("absent.auth") != std::string::npos);
  }

} // TEST_SUITE("memcached smoke")
