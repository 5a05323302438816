#include "node/node_tree.hpp"

#include <cerrno>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "source/config_store.hpp"
#include "node/refresher.hpp"
#include "node/refresh_actions.hpp"

namespace mcfg {

sup::child_id writer_child_id(size_t index) {
  return *sup::make_child_id("file" + std::to_string(index + 1));
}

std::vector<located_error> validate_for_files(const node_config& cfg,
                                              const source_document& doc) {
  std::vector<located_error> out;
  for (auto& file : cfg.files)
    if (auto problem = file.module->validate(doc.values)) {
      auto err = doc.locate(problem->key, problem->message);
      auto same = [&](const located_error& x) {
        return x.to_string() == err.to_string();
      };
      if (std::none_of(out.begin(), out.end(), same))
        out.push_back(std::move(err));
    }
  return out;
}

sup::supervisor_flags root_flags(const node_config& cfg) {
  sup::supervisor_flags flags;
  flags.name = "root";
  flags.how = sup::strategy::one_for_one;
  flags.intensity = static_cast<uint32_t>(cfg.supervisor_intensity);
  flags.period = cfg.supervisor_period;
  return flags;
}

std::vector<sup::child_spec> node_children(
  const node_config& cfg, std::shared_ptr<source_of_truth> truth) {
  // Refreshes hold this lock while they run and renames try it, so a
  // consumer never re-reads a file while it is being replaced (ns_server's
  // apply_to_file). A writer never waits for it: a rename that finds a
  // refresh under way fails with EBUSY and is retried like any failed rename.
  auto file_lock = std::make_shared<std::mutex>();
  auto files = make_posix_file_port();
  std::vector<sup::child_spec> children;

  config_store_spec store;
  store.source_path = cfg.source;
  store.truth = truth;
  store.validate = [cfg](const source_document& doc) {
    return validate_for_files(cfg, doc);
  };
  children.push_back(sup::worker_child(
    store_child_id, sup::make_start([store](caf::actor_system& sys) {
      return spawn_config_store(sys, store);
    })));

  refresher_spec refresh;
  refresh.file_lock = file_lock;
  refresh.refresh_on_start = true;
  for (auto& file : cfg.files)
    if (auto action = make_refresh_action(file.refresh))
      refresh.actions.emplace(file.path, std::move(action));
  children.push_back(sup::worker_child(
    refresher_child_id, sup::make_start([refresh](caf::actor_system& sys) {
      return spawn_refresher(sys, refresh);
    })));

  for (size_t i = 0; i < cfg.files.size(); ++i) {
    auto& file = cfg.files[i];
    writer_spec spec;
    spec.settings.path = file.path;
    spec.settings.mode = file.mode;
    spec.settings.retry_interval = cfg.retry_interval;
    spec.settings.deadline = cfg.retry_deadline;
    spec.make_module = file.module->make;
    spec.subscribe = [truth](const memcached_cfg_actor& self) {
      truth->subscribe(self);
    };
    spec.read_snapshot = [truth] { return truth->read(); };
    spec.files = files;
    spec.rename = [files, file_lock](const std::string& from,
                                     const std::string& to) {
      std::unique_lock<std::mutex> guard{*file_lock, std::try_to_lock};
      if (!guard.owns_lock())
        return std::error_code{EBUSY, std::generic_category()};
      return files->rename(from, to);
    };
    children.push_back(sup::worker_child(
      writer_child_id(i),
      sup::make_start([spec, path = file.path](caf::actor_system& sys) {
        auto with_refresh = spec;
        // Looked up per refresh: the refresher may have been restarted.
        with_refresh.refresh = [&sys, path] {
          if (auto r = sys.registry().get<refresher_actor>(refresher_child_id))
            caf::anon_send(r, refresh_atom::value, path);
        };
        return spawn_memcached_cfg(sys, std::move(with_refresh));
      })));
  }
  return children;
}

} // namespace mcfg
