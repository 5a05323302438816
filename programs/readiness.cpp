#include "memcached_cfg/programs/readiness.hpp"

#include <string>

#include <malloc.h>

#include <systemd/sd-daemon.h>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include "memcached_cfg/actors/memcached_cfg.hpp"
#include "memcached_cfg/messages/log.hpp"

namespace mcfg {

readiness::readiness(caf::actor_system& sys, std::vector<sup::child_id> writers)
  : thread_([this, &sys, writers = std::move(writers)] {
      // A thread's entry lets no exception out (that would be
      // std::terminate, and a core): without READY=1, systemd's start
      // timeout then says the node did not come up.
      try {
        wait_and_notify(sys, writers);
      } catch (...) {
        log::error("mcfgd", "the readiness wait failed (an exception); "
                            "systemd is not told READY=1");
      }
    }) {
  // nop
}

readiness::~readiness() {
  stop_ = true;
  thread_.join();
}

void readiness::wait_and_notify(caf::actor_system& sys,
                                const std::vector<sup::child_id>& writers) {
  caf::scoped_actor self{sys};
  for (auto id : writers) {
    for (bool in_step = false; !in_step;) {
      if (stop_)
        return;
      auto writer = sys.registry().get<memcached_cfg_actor>(id);
      if (writer)
        self->request(writer, poll, sync_atom::value)
          .receive([&](caf::ok_atom) { in_step = true; },
                   [](caf::error&) {}); // timed out, or restarted: again
      if (!in_step)
        std::this_thread::sleep_for(poll / 10);
    }
  }
  auto files = std::to_string(writers.size());
  sd_notifyf(0, "READY=1\nSTATUS=%s files written, following the source",
             files.c_str());
  log::info("mcfgd", "ready: " + files + " files written");
  // What start-up alone needed (node.yaml's YAML tree, every file's first
  // rendering) is freed by now, but glibc keeps the pages: at 10,000 files
  // handing them back takes 18 MB (a fifth) off the resident size.
  ::malloc_trim(0);
}

} // namespace mcfg
