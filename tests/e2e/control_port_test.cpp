// Bad input on the control port: a raw CAF client sending what mcfgctl never
// would, and a client that does not speak CAF at all. The node answers with
// an error or drops the connection, keeps running, and no file changes.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "messages/atoms.hpp"
#include "messages/message_types.hpp"
#include "node/control.hpp"
#include "node_harness.hpp"
#include "support/memcached_server.hpp" // free_loopback_port
#include "supervision/supervisor.hpp"

using namespace mcfg::test;
namespace fs = std::filesystem;

namespace {

/// Sends raw bytes to 127.0.0.1:port and closes.
void send_garbage(uint16_t port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
    (void) ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  ::close(fd);
}

} // namespace

TEST_CASE("the control port answers bad requests with errors and keeps the "
          "node and its files as they were") {
  temp_dir dir;
  auto port = free_loopback_port();
  auto node = "127.0.0.1:" + std::to_string(port);
  auto auth = dir / "run/memcached.auth";
  write_text(dir / "cluster.yaml", "users:\n  alice: {password: Pw-ctl-1}\n");
  write_text(dir / "node.yaml", "source: cluster.yaml\nfiles:\n"
                                "  - module: memcached_passwords\n"
                                "    path: run/memcached.auth\n"
                                "control: {listen: \"" + node + "\"}\n");
  child_process mcfgd{{MCFGD, "--config", dir / "node.yaml"}, dir / "out",
                      dir / "err"};
  REQUIRE(eventually([&] { return loopback_accepts(port, 100ms); }));
  REQUIRE(run(dir, {MCFGCTL, "--node", node, "sync"}).exit_code == 0);
  auto before = read_file(auth);
  REQUIRE(before == "alice:Pw-ctl-1\n");
  bool killed_control = false;
  // mcfgctl itself refuses what it does not know, before sending anything.
  auto unknown = run(dir, {MCFGCTL, "--node", node, "shutdown"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("mcfgctl: unknown command 'shutdown'")
        != std::string::npos);

  SUBCASE("a client that does not speak CAF") {
    send_garbage(port, "GET / HTTP/1.0\r\n\r\n");
    send_garbage(port, std::string(4096, '\xff'));
  }
  SUBCASE("a raw CAF client sending messages of the wrong types") {
    caf::actor_system_config cfg;
    mcfg::add_message_types(cfg);
    mcfg::sup::add_message_types(cfg);
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    cfg.load<caf::io::middleman>();
    caf::actor_system sys{cfg};
    REQUIRE_FALSE(sys.middleman().remote_actor("127.0.0.1", port)); // untyped
    // The handshake checks the interface, so take the typed handle and
    // drop its type, as a hostile client would.
    auto typed = sys.middleman().remote_actor<mcfg::control_actor>("127.0.0.1",
                                                                   port);
    REQUIRE(typed);
    auto control = caf::actor_cast<caf::actor>(*typed);
    caf::scoped_actor self{sys};
    auto expect_error = [&](auto... xs) {
      bool got_error = false;
      self->request(control, std::chrono::seconds(10), xs...)
        .receive([&](caf::message&) {}, [&](caf::error&) { got_error = true; });
      CHECK(got_error);
    };
    expect_error(mcfg::sync_atom::value, int32_t{42});  // wrong argument type
    expect_error(caf::atom("shutdown"));                // unknown command
    expect_error(mcfg::reload_atom::value);             // missing argument
    expect_error(std::string{"status"});                // not an atom at all
    // CAF obeys a remote kill; mcfgd publishes a new control actor.
    self->send_exit(control, caf::exit_reason::kill);
    killed_control = true;
  }
  // The node still answers, and nothing was written.
  run_result status;
  CHECK(eventually([&] {
    status = run(dir, {MCFGCTL, "--node", node, "status"});
    return status.exit_code == 0;
  }));
  CHECK(status.out.find(auth) != std::string::npos);
  CHECK(read_file(auth) == before);
  CHECK(process_alive(mcfgd.pid()));
  CHECK(status.out.find("Pw-ctl-1") == std::string::npos);
  if (killed_control) {
    CAPTURE(read_file(dir / "err"));
    CHECK(read_file(dir / "err").find("control actor stopped (")
          != std::string::npos);
  }
  mcfgd.signal(SIGTERM);
  CHECK(mcfgd.wait_exit_code(20s) == 0);
}
