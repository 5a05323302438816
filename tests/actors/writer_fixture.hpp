#pragma once
// A memcached_cfg writer over kv_module and the fake file port, under the
// test_coordinator. The fixture keeps the source of truth and sends updates
// in step with it, one version each, as the source_of_truth does.
#include <caf/send.hpp>

#include "fake_file_port.hpp"
#include "kv_module.hpp"
#include "memcached_cfg/actors/detail/writer_atoms.hpp"
#include "memcached_cfg/actors/memcached_cfg.hpp"
#include "support/actor_probes.hpp"
#include "support/coordinator_fixture.hpp"

namespace mcfg::test {

using namespace std::chrono_literals;

struct writer_fixture : coordinator_fixture {
  const std::string path = "/etc/mcfg/auth";
  const std::string tmp_path = "/etc/mcfg/auth.tmp";
  std::shared_ptr<fake_file_port> files = std::make_shared<fake_file_port>();
  std::shared_ptr<snapshot> truth = std::make_shared<snapshot>();
  /// The version `truth` is at.
  std::shared_ptr<uint64_t> version = std::make_shared<uint64_t>(0);
  std::shared_ptr<size_t> refreshes = std::make_shared<size_t>(0);
  memcached_cfg_actor writer;
  watcher exits;

  writer_spec spec() {
    writer_spec s;
    s.settings.path = path;
    s.files = files;
    s.make_module = [] { return std::make_unique<kv_module>(); };
    s.read_snapshot = [truth = truth, version = version] {
      return versioned_snapshot{*version, *truth};
    };
    s.refresh = [n = refreshes](uint64_t) { ++*n; };
    return s;
  }

  /// Spawns the writer and lets it make its initial write.
  void start() {
    start(spec());
  }

  /// The same with a spec of the test's own (other settings).
  void start(writer_spec s) {
    writer = spawn_memcached_cfg(sys, std::move(s));
    exits = watch(sys, writer);
    run();
  }

  /// Changes one key of the source of truth as a new version and tells the
  /// writer, without running it.
  void change(const std::string& key, int64_t value) {
    change({{key, value}});
  }

  /// Changes every key of `values` as one new version and tells the writer,
  /// without running it. Returns the version.
  uint64_t change(const std::map<std::string, int64_t>& values) {
    config_update update{++*version, {}};
    for (auto& [key, value] : values) {
      (*truth)[key] = config_value{value};
      update.changes.push_back({key, config_value{value}, false});
    }
    caf::anon_send(writer, change_atom::value, std::move(update));
    return *version;
  }

  std::string file() const {
    auto i = files->files.find(path);
    return i == files->files.end() ? std::string{"<missing>"} : i->second;
  }

  const std::vector<std::string>& renamed() {
    return files->renamed[path];
  }

  std::string expected_file() const {
    return render_kv(*truth);
  }

  writer_status status() {
    auto r = ask<writer_status>(sys, writer, status_atom::value);
    run();
    REQUIRE(r->value);
    return *r->value;
  }

  std::shared_ptr<reply<caf::ok_atom>> sync() {
    return ask<caf::ok_atom>(sys, writer, sync_atom::value);
  }

  std::shared_ptr<reply<caf::ok_atom>> sync(uint64_t v) {
    return ask<caf::ok_atom>(sys, writer, sync_atom::value, v);
  }

  /// The ids carried by retry messages waiting in the simulated clock.
  std::vector<uint64_t> pending_retry_ids() const {
    std::vector<uint64_t> ids;
    using actor_msg = caf::detail::simple_actor_clock::actor_msg;
    for (auto& [due, event] : sched.clock().schedule()) {
      if (event->subtype != caf::detail::simple_actor_clock::actor_msg_type)
        continue;
      auto& content = static_cast<actor_msg&>(*event).content->content();
      if (content.match_elements<detail::retry_atom, uint64_t>())
        ids.push_back(content.get_as<uint64_t>(1));
    }
    return ids;
  }
};

} // namespace mcfg::test
