// Embeds a memcached_cfg writer under an OTP-style supervisor, with nothing
// but the installed memcached_cfg package: the writer keeps a memcached auth
// file (the memcached_passwords module) at the path given, the supervisor
// restarts it when it dies, and its new incarnation writes the source as it
// is then. Checks the file at each step; exits 0 when every check passed.
//
//   consumer /tmp/memcached.auth
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <memcached_cfg/actors/memcached_cfg.hpp>
#include <memcached_cfg/messages/message_types.hpp>
#include <memcached_cfg/modules/memcached_passwords.hpp>
#include <memcached_cfg/supervision/supervisor.hpp>

namespace {

constexpr auto writer_id = caf::atom("auth");

/// The embedding program's source of truth: whatever it keeps its users in,
/// with a version that grows with each change.
class user_store {
public:
  void set(const std::string& name, const std::string& password) {
    caf::config_value::dictionary entry;
    entry["password"] = caf::config_value{password};
    std::lock_guard<std::mutex> guard{mtx_};
    users_["users/" + name] = caf::config_value{std::move(entry)};
    ++version_;
  }
  mcfg::versioned_snapshot read() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return {version_, users_};
  }

private:
  mutable std::mutex mtx_;
  uint64_t version_ = 0;
  mcfg::snapshot users_;
};

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  return {std::istreambuf_iterator<char>{in}, {}};
}

int failures = 0;

void check(bool ok, const std::string& what) {
  std::cout << (ok ? "ok:     " : "FAILED: ") << what << '\n';
  if (!ok)
    ++failures;
}

/// The writer's live incarnation once it is not `old`, and the file holds
/// its state (sync); an invalid handle if none comes within 10 s.
mcfg::memcached_cfg_actor in_step_writer(caf::actor_system& sys,
                                         caf::scoped_actor& self,
                                         const caf::actor_addr& old = {}) {
  for (int i = 0; i < 1000; ++i) {
    auto writer = sys.registry().get<mcfg::memcached_cfg_actor>(writer_id);
    if (writer && writer.address() != old) {
      bool synced = false;
      self->request(writer, std::chrono::seconds(10), mcfg::sync_atom::value)
        .receive([&](caf::ok_atom) { synced = true; }, [](caf::error&) {});
      if (synced)
        return writer;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {};
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer AUTH_FILE\n";
    return 2;
  }
  const std::string path = argv[1];
  caf::actor_system_config cfg;
  mcfg::add_message_types(cfg);
  mcfg::sup::add_message_types(cfg);
  caf::actor_system sys{cfg};

  auto store = std::make_shared<user_store>();
  store->set("alice", "wonderland-7");

  mcfg::writer_spec spec;
  spec.settings.path = path;
  spec.make_module = mcfg::make_memcached_passwords;
  spec.read_snapshot = [store] { return store->read(); };
  auto start = mcfg::sup::make_start([spec](caf::actor_system& sys) {
    return mcfg::spawn_memcached_cfg(sys, spec);
  });
  mcfg::sup::supervisor_flags flags;
  flags.name = "consumer";
  auto root = mcfg::sup::start_supervisor(
    sys, flags, {mcfg::sup::worker_child(writer_id, std::move(start))});
  if (!root) {
    std::cerr << "consumer: supervisor did not start: "
              << sys.render(root.error()) << '\n';
    return 1;
  }
  std::cout << "started a supervisor with one memcached_cfg writer for " << path
            << '\n';

  caf::scoped_actor self{sys};
  auto writer = in_step_writer(sys, self);
  check(writer != nullptr, "the writer is registered and in step");
  check(read_file(path) == "alice:wonderland-7\n",
        "the auth file holds alice (1 user)");

  // The source changes while the writer is down: the supervisor restarts
  // it, and the new incarnation writes the source as it is now.
  store->set("bob", "builder-42");
  self->send_exit(writer, caf::exit_reason::kill);
  auto restarted = in_step_writer(sys, self, writer.address());
  check(restarted != nullptr, "the supervisor restarted the killed writer");
  check(read_file(path) == "alice:wonderland-7\nbob:builder-42\n",
        "its new incarnation wrote alice and bob (2 users)");
  check(!std::ifstream{path + ".tmp"}.good(), "no temp file is left");

  self->send_exit(*root, caf::exit_reason::user_shutdown);
  self->wait_for(*root);
  std::cout << (failures == 0 ? "all checks passed\n" : "checks failed\n");
  return failures == 0 ? 0 : 1;
}
