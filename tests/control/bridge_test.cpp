// The control actor (control/bridge.hpp) on a real actor system: status
// comes from the status board, so a writer stuck in a system call holds up
// no status, and the file's figures still show how long it has waited.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/gated_port.hpp"
#include "actors/kv_module.hpp"
#include "memcached_cfg/actors/memcached_cfg.hpp"
#include "memcached_cfg/control/bridge.hpp"
#include "memcached_cfg/messages/message_types.hpp"

using namespace mcfg;
using namespace mcfg::test;
using namespace std::chrono_literals;

namespace {

struct threaded_system {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  threaded_system() : sys(init(cfg)) {
  }
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    add_message_types(cfg);
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    return cfg;
  }
};

} // namespace

TEST_CASE("control: status answers from the board while the file's writer "
          "is stuck in a write, which a request to the writer cannot") {
  threaded_system t;
  auto& sys = t.sys;
  const std::string path = "/etc/mcfg/auth";
  auto gate = std::make_shared<gated_port>(std::make_shared<fake_file_port>());
  auto board = std::make_shared<status_board>(std::vector<std::string>{path});
  writer_spec spec;
  spec.settings.path = path;
  spec.files = gate;
  spec.make_module = [] { return std::make_unique<kv_module>(); };
  spec.read_snapshot = [] { return versioned_snapshot{1, {}}; };
  spec.publish = [board](writer_status st, caf::actor_clock::time_point at) {
    board->publish_file(0, std::move(st), at);
  };
  // Inline I/O on a thread of its own: the first write blocks the actor.
  spec.detached = true;
  auto writer = spawn_memcached_cfg(sys, spec);
  auto id = caf::atom("file1");
  sys.registry().put(id, caf::actor_cast<caf::strong_actor_ptr>(writer));
  gate->wait_until_in_write();

  control_spec cs;
  cs.files = {{path, id}};
  cs.store = caf::atom("store"); // none: the source stays as it starts
  cs.refresher = caf::atom("refresher");
  cs.board = board;
  auto control = spawn_control(sys, cs);
  auto backend = make_actor_backend(sys, control, 5s);

  caf::scoped_actor self{sys};
  bool writer_answered = false;
  self->request(writer, 200ms, status_atom::value)
    .receive([&](const writer_status&) { writer_answered = true; },
             [](const caf::error&) {});
  CHECK_FALSE(writer_answered); // stuck: asking it would wait
  auto st = backend->status();
  REQUIRE(st);
  REQUIRE(st->files.size() == 1);
  auto& f = st->files[0];
  CHECK(f.path == path);
  CHECK(f.phase == writer_phase::pending);
  CHECK(f.last_error.empty());
  CHECK(f.writes == 0);
  // Aged on the board: at least the 200 ms the writer did not answer.
  CHECK(f.since_last_change >= 200ms);

  gate->release();
  self->request(writer, caf::infinite, sync_atom::value)
    .receive([](caf::ok_atom) {},
             [](const caf::error& err) {
               FAIL("sync failed: " << to_string(err));
             });
  // Once the writer answers again, its write handler (and its publication)
  // is done.
  self->request(writer, caf::infinite, status_atom::value)
    .receive([](const writer_status&) {}, [](const caf::error&) {});
  auto after = backend->status();
  REQUIRE(after);
  CHECK(after->files[0].phase == writer_phase::idle);
  CHECK(after->files[0].writes == 1);
  CHECK(after->files[0].applied_version == 1);
  // The registry's reference would keep the detached writer's thread (and
  // the actor system's shutdown) waiting.
  sys.registry().erase(id);
  self->send_exit(writer, caf::exit_reason::user_shutdown);
  self->send_exit(control, caf::exit_reason::user_shutdown);
}
