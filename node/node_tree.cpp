#include "memcached_cfg/node/node_tree.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <variant>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "memcached_cfg/refresh/memcached_check.hpp"
#include "memcached_cfg/refresh/refresh_actions.hpp"
#include "memcached_cfg/refresh/refresher.hpp"
#include "memcached_cfg/source/file_store.hpp"
#include "memcached_cfg/supervision/supervisor.hpp"

namespace mcfg {

sup::child_id writer_child_id(size_t index) {
  return *sup::make_child_id("file" + std::to_string(index + 1));
}

namespace {

/// Whether an etcd that did not answer may answer a later try. Not when the
/// TLS handshake failed over a certificate (one the CA did not sign, none
/// where the members require one, a name that does not match): the same
/// files fail the same way at every try, which is configuration to mend,
/// not a reason to wait. curl names the certificate in each such failure,
/// and in no failure to connect.
bool may_answer_later(const etcd::etcd_error& e) {
  if (e.code() != etcd::etcd_errc::unavailable)
    return false;
  std::string what = e.what();
  std::transform(what.begin(), what.end(), what.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return what.find("certificate") == std::string::npos;
}

node_source_read read_node_source(const node_config& cfg, etcd::client* via) {
  auto validate = files_validator(cfg);
  node_source_read out;
  if (!cfg.etcd) {
    auto file = load_and_validate(cfg.source, validate);
    if (!file.ok()) {
      out.loaded.errors = std::move(file.errors);
      return out;
    }
    out.loaded.value = node_source{std::move(*file.value), nullptr};
    return out;
  }
  auto where = [&](std::string message) {
    out.loaded.errors.push_back({"source.etcd", 0, 0, "", std::move(message)});
    return out;
  };
  auto opts = etcd_client_options(*cfg.etcd);
  if (!opts)
    return where(opts.error().message);
  auto node = std::make_shared<etcd_source>();
  node->client = std::move(opts).value();
  node->prefix = cfg.etcd->prefix;
  node->versions = std::make_shared<etcd_versions>();
  node->reach = std::make_shared<etcd::etcd_reachability>();
  try {
    std::optional<etcd::client> own;
    if (!via)
      via = &own.emplace(node->client);
    node->initial = etcd::read_users(*via, node->prefix);
  } catch (const etcd::etcd_error& e) {
    out.unreachable = may_answer_later(e);
    return where(describe_etcd_source(node->client, node->prefix) + ": "
                 + e.what());
  } catch (...) {
    return where(describe_etcd_source(node->client, node->prefix) + ": "
                 + etcd::describe_current_exception());
  }
  auto checked = validate_users(node->initial, validate);
  if (!checked.ok()) {
    out.loaded.errors = std::move(checked.errors);
    return out;
  }
  out.loaded.value = node_source{std::move(*checked.value), std::move(node)};
  return out;
}

} // namespace

node_source_read load_node_source(const node_config& cfg, etcd::client* via) {
  // The start-up read (and `mcfgd --check`): whatever it meets is refused
  // with a message, never std::terminate. A crash here would repeat at
  // every restart, since the source still holds what caused it.
  try {
    return read_node_source(cfg, via);
  } catch (...) {
    node_source_read out;
    auto where = cfg.etcd ? std::string{"source.etcd"} : cfg.source;
    out.loaded.errors.push_back(
      {where, 0, 0, "",
       "cannot read the source: " + etcd::describe_current_exception()});
    return out;
  }
}

std::shared_ptr<io_pool> make_io_pool(const node_config& cfg) {
  return make_thread_pool(std::min(cfg.files.size(), cfg.io_threads));
}

std::shared_ptr<source_of_truth> make_truth(const node_source& src) {
  auto truth = source_of_truth::make(src.doc.values);
  if (src.etcd)
    src.etcd->versions->record(truth->version(), {src.etcd->initial.revision,
                                                  src.etcd->initial.digest});
  return truth;
}

sup::supervisor_flags root_flags(const node_config& cfg) {
  sup::supervisor_flags flags;
  flags.name = "root";
  flags.how = sup::strategy::one_for_one;
  flags.intensity = static_cast<uint32_t>(cfg.supervisor_intensity);
  flags.period = cfg.supervisor_period;
  return flags;
}

sup::supervisor_flags files_flags(const node_config& cfg) {
  // A writer gives up no sooner than `deadline` after it starts, so within
  // one period one writer restarts at most period/deadline + 1 times for a
  // fault it cannot write past. A fault shared by every file (a read-only or
  // full disk) gives one such round per file: the budget holds them all, so
  // the node rides such a fault out, and reports it (writer status: failing
  // for, restarts, why), rather than exit. A writer that crashes at once
  // uses this budget up within milliseconds and still brings the supervisor
  // down.
  auto deadline = std::max(cfg.retry_deadline, caf::timespan{1});
  auto rounds = static_cast<uint32_t>(cfg.supervisor_period / deadline) + 1;
  sup::supervisor_flags flags;
  flags.name = "files";
  flags.how = sup::strategy::one_for_one;
  flags.intensity = std::max<uint32_t>(
    static_cast<uint32_t>(cfg.files.size()) * rounds,
    static_cast<uint32_t>(cfg.supervisor_intensity));
  flags.period = cfg.supervisor_period;
  return flags;
}

std::shared_ptr<status_board> make_status_board(const node_config& cfg) {
  std::vector<std::string> paths;
  for (auto& file : cfg.files)
    paths.push_back(file.path);
  return std::make_shared<status_board>(std::move(paths));
}

sup::child_spec files_child(const node_config& cfg,
                            std::shared_ptr<source_of_truth> truth,
                            std::shared_ptr<file_port> files,
                            std::shared_ptr<io_pool> pool,
                            std::shared_ptr<status_board> board) {
  std::vector<sup::child_spec> children;
  children.reserve(cfg.files.size());
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
    // One record for every incarnation of this file's writer.
    spec.history = std::make_shared<writer_history>();
    spec.pool = pool;
    if (board)
      spec.publish = [board, i](writer_status st,
                                caf::actor_clock::time_point at) {
        board->publish_file(i, std::move(st), at);
      };
    // One spec per file, shared by its every incarnation (at 10,000 files a
    // copy per writer is megabytes). Its refresh needs the actor system,
    // which the first start brings: set then, before any writer reads it.
    children.push_back(sup::worker_child(
      writer_child_id(i),
      sup::make_start([spec = std::make_shared<writer_spec>(std::move(spec))](
                        caf::actor_system& sys) {
        if (!spec->refresh)
          spec->refresh = [&sys, path = spec->settings.path](uint64_t version) {
            // Looked up per refresh: the refresher may have been restarted.
            // A message, never a wait: a refresh never holds up a rename.
            if (auto r = sys.registry().get<refresher_actor>(
                  refresher_child_id))
              caf::anon_send(r, refresh_atom::value, path, version);
          };
        return spawn_memcached_cfg(sys,
                                   std::shared_ptr<const writer_spec>{spec});
      })));
  }
  return sup::supervisor_child(files_child_id, files_flags(cfg),
                               std::move(children));
}

namespace {

/// The refresh of `file`, and its check when node.yaml gives it a
/// `verify`; nothing for a file without a refresh.
std::optional<refresh_job>
make_refresh_job(const file_config& file,
                 std::shared_ptr<const std::atomic<bool>> stopping) {
  auto action = make_refresh_action(file.refresh, default_command_timeout,
                                    std::move(stopping));
  if (!action)
    return std::nullopt;
  refresh_job job{std::move(action), {}, {}};
  if (file.verify) {
    // With a signal, the check may read the pidfile to learn why memcached
    // did not take the file; a command names no process.
    std::string pidfile;
    if (auto sig = std::get_if<refresh_signal>(&file.refresh))
      pidfile = sig->pidfile;
    // Made once here: the job is copied into every refresher incarnation,
    // so they share the check and what it knows of memcached.
    job.check = std::shared_ptr<consumer_check>(
      make_memcached_check(file.verify->memcached, std::move(pidfile)));
    job.verify.timeout = file.verify->timeout;
  }
  return job;
}

} // namespace

std::vector<sup::child_spec>
node_children(const node_config& cfg, std::shared_ptr<source_of_truth> truth,
              const node_source& src, std::shared_ptr<io_pool> pool,
              std::shared_ptr<status_board> board,
              std::shared_ptr<const std::atomic<bool>> stopping) {
  std::vector<sup::child_spec> children;

  // What it needs of node.yaml, not a copy of it (with 10,000 files, one
  // per copy of the store's spec and per incarnation).
  auto validate = files_validator(cfg);
  // The backend is the only difference: the same truth, the same checks.
  if (src.etcd) {
    etcd_store_spec store;
    store.client = src.etcd->client;
    store.prefix = src.etcd->prefix;
    store.truth = truth;
    store.validate = validate;
    store.versions = src.etcd->versions;
    store.reach = src.etcd->reach;
    children.push_back(sup::worker_child(
      store_child_id, sup::make_start([store](caf::actor_system& sys) {
        return spawn_etcd_store(sys, store);
      })));
  } else {
    file_store_spec store;
    store.source_path = cfg.source;
    store.truth = truth;
    store.validate = validate;
    children.push_back(sup::worker_child(
      store_child_id, sup::make_start([store](caf::actor_system& sys) {
        return spawn_file_store(sys, store);
      })));
  }

  refresher_spec refresh;
  refresh.refresh_on_start = true;
  for (auto& file : cfg.files)
    if (auto job = make_refresh_job(file, stopping))
      refresh.jobs.emplace(file.path, std::move(*job));
  if (board)
    refresh.publish = [board](refresh_status st,
                              caf::actor_clock::time_point at) {
      board->publish_refresh(std::move(st), at);
    };
  children.push_back(sup::worker_child(
    refresher_child_id, sup::make_start([refresh](caf::actor_system& sys) {
      return spawn_refresher(sys, refresh);
    })));

  children.push_back(
    files_child(cfg, truth, make_posix_file_port(), std::move(pool), board));
  return children;
}

void reload_all(caf::actor_system& sys, const node_config& cfg) {
  if (auto store = sys.registry().get<store_actor>(store_child_id))
    caf::anon_send(store, reload_atom::value);
  for (size_t i = 0; i < cfg.files.size(); ++i)
    if (auto writer = sys.registry().get<memcached_cfg_actor>(
          writer_child_id(i)))
      caf::anon_send(writer, reload_atom::value);
}

} // namespace mcfg
