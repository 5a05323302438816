#include "memcached_cfg/control/bridge.hpp"

#include <filesystem>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "memcached_cfg/actors/memcached_cfg.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/refresh/refresher.hpp"
#include "memcached_cfg/source/file_store.hpp"
#include "memcached_cfg/supervision/errors.hpp"

namespace mcfg {

namespace {

using control_self = control_actor::pointer;

/// Runs `done` once `count` replies have arrived (at once for none).
class join {
public:
  join(size_t count, std::function<void()> done)
    : left_(count), done_(std::move(done)) {
    if (left_ == 0)
      done_();
  }
  void arrive() {
    if (--left_ == 0)
      done_();
  }

private:
  size_t left_;
  std::function<void()> done_;
};

/// The spec, shared by the handlers and the requests in flight: with 10,000
/// files a copy is a megabyte, and a sync of every file once held one per
/// file.
using spec_ptr = std::shared_ptr<const control_spec>;

template <class Handle>
Handle lookup(control_self self, sup::child_id id) {
  return self->system().registry().template get<Handle>(id);
}

/// The files a request names: all for "", else the one with that path.
caf::expected<std::vector<std::pair<std::string, sup::child_id>>>
select(const control_spec& spec, const std::string& file) {
  if (file.empty())
    return spec.files;
  for (auto& entry : spec.files)
    if (entry.first == file)
      return std::vector<std::pair<std::string, sup::child_id>>{entry};
  return caf::make_error(errc::unknown_file, file);
}

/// What the node waits for before its tree starts, if it still waits.
std::optional<source_status> starting(const control_spec& spec) {
  return spec.starting ? spec.starting() : std::nullopt;
}

/// What a file's status says before the node's tree has started: a file on
/// disk is one an earlier run wrote.
std::string not_started(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec))
    return "kept as an earlier run wrote it; not yet checked against the "
           "source (the node is starting)";
  return "not yet written (the node is starting)";
}

/// Step 3 of sync for one file: its own refresh went through, and with a
/// consumer check its consumer enforces `version` (another file's slow or
/// failing refresh does not hold it up).
void sync_refresh(control_self self, const control_spec& spec,
                  const std::string& path, uint64_t version,
                  std::function<void(file_sync)> done,
                  std::function<void(caf::error)> fail) {
  auto refresher = lookup<refresher_actor>(self, spec.refresher);
  if (!refresher) {
    fail(caf::make_error(errc::refresher_stopped, path));
    return;
  }
  self->request(refresher, caf::infinite, sync_atom::value, path, version)
    .then([done](file_sync& x) { done(std::move(x)); },
          [fail](caf::error& err) { fail(std::move(err)); });
}

using sync_promise = caf::typed_response_promise<std::vector<file_sync>>;

/// Step 2 of sync: every selected writer's file holds `version` (or a
/// later one), then its file's refresh (and check) went through.
void sync_writers(control_self self, spec_ptr spec,
                  std::vector<std::pair<std::string, sup::child_id>> files,
                  uint64_t version, sync_promise rp) {
  auto failed = std::make_shared<bool>(false);
  auto out = std::make_shared<std::vector<file_sync>>(files.size());
  auto all = std::make_shared<join>(files.size(), [=]() mutable {
    if (!*failed)
      rp.deliver(*out);
  });
  std::function<void(caf::error)> fail = [rp, failed,
                                          all](caf::error err) mutable {
    if (!*failed) {
      *failed = true;
      rp.deliver(std::move(err));
    }
    all->arrive();
  };
  for (size_t i = 0; i < files.size(); ++i) {
    auto& [path, id] = files[i];
    std::function<void(file_sync)> done = [all, out, i](file_sync x) {
      (*out)[i] = std::move(x);
      all->arrive();
    };
    auto writer = lookup<memcached_cfg_actor>(self, id);
    if (!writer) {
      fail(caf::make_error(errc::writer_stopped, path));
      continue;
    }
    self->request(writer, caf::infinite, sync_atom::value, version)
      .then(
        [self, spec, path = path, version, done, fail](caf::ok_atom) {
          sync_refresh(self, *spec, path, version, done, fail);
        },
        [fail](caf::error& err) { fail(std::move(err)); });
  }
}

caf::result<std::vector<file_sync>> sync(control_self self, spec_ptr spec,
                                         const std::string& file) {
  auto files = select(*spec, file);
  if (!files)
    return std::move(files.error());
  if (auto waiting = starting(*spec))
    return caf::make_error(errc::node_starting, waiting->unreachable);
  auto rp = self->make_response_promise<std::vector<file_sync>>();
  auto store = lookup<store_actor>(self, spec->store);
  if (!store)
    return caf::make_error(errc::writer_stopped, "file_store");
  // Step 1: the store looks at the source now, so an edit just saved counts,
  // and names the version the files must then hold.
  self->request(store, caf::infinite, sync_atom::value)
    .then(
      [self, spec, files = std::move(*files), rp](uint64_t version) mutable {
        sync_writers(self, spec, std::move(files), version, rp);
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

/// The files' and refreshes' status, from the board: no writer is asked.
void read_board(control_self self, const control_spec& spec, node_status& out,
                bool waiting) {
  status_board::snapshot board;
  if (spec.board)
    board = spec.board->read(self->clock().now());
  out.refreshes = std::move(board.refreshes);
  out.files.resize(spec.files.size());
  for (size_t i = 0; i < spec.files.size(); ++i) {
    auto& [path, id] = spec.files[i];
    auto& file = out.files[i];
    bool published = i < board.published.size() && board.published[i];
    if (published)
      file = std::move(board.files[i]);
    file.path = path;
    if (waiting) {
      file.last_error = not_started(path);
    } else if (!lookup<memcached_cfg_actor>(self, id)) {
      // Between an incarnation's exit and the next one's start: what the
      // last one published (restarts, why it gave up) stays.
      file.phase = writer_phase::pending;
      file.last_error = "no live writer (restarting)";
      file.attempt_running_for = caf::timespan{-1};
      file.attempt_step.clear();
    } else if (!published) {
      file.phase = writer_phase::pending;
      file.last_error = "starting";
    }
  }
}

caf::result<node_status> status(control_self self, const control_spec& spec) {
  auto out = std::make_shared<node_status>();
  auto waiting = starting(spec);
  read_board(self, spec, *out, waiting.has_value());
  if (waiting)
    out->source = std::move(*waiting);
  auto store = lookup<store_actor>(self, spec.store);
  if (!store)
    return *out;
  auto rp = self->make_response_promise<node_status>();
  self->request(store, caf::infinite, status_atom::value)
    .then(
      [rp, out](source_status& x) mutable {
        out->source = std::move(x);
        rp.deliver(std::move(*out));
      },
      [rp, out](caf::error&) mutable { rp.deliver(std::move(*out)); });
  return rp;
}

caf::result<caf::ok_atom> reload(control_self self, const control_spec& spec,
                                 const std::string& file) {
  auto files = select(spec, file);
  if (!files)
    return std::move(files.error());
  // Fire and forget: the store's answer to reload has no one to go to.
  if (auto store = lookup<store_actor>(self, spec.store))
    caf::anon_send(store, reload_atom::value);
  for (auto& [path, id] : *files)
    if (auto writer = lookup<memcached_cfg_actor>(self, id))
      caf::anon_send(writer, reload_atom::value);
  return caf::ok_atom::value;
}

control_actor::behavior_type control(control_self self, spec_ptr spec) {
  return {
    [=](status_atom) { return status(self, *spec); },
    [=](sync_atom, const std::string& file) { return sync(self, spec, file); },
    [=](reload_atom, const std::string& file) {
      return reload(self, *spec, file);
    },
  };
}

/// The HTTP status for an error of the control actor.
backend_error to_backend_error(const caf::error& err,
                               const caf::actor_system& sys) {
  int status = 500;
  if (err == errc::unknown_file)
    status = 404;
  else if (err == caf::sec::request_timeout)
    status = 504;
  else if (err == errc::writer_stopped || err == errc::verify_failed
           || err == errc::node_starting)
    status = 503;
  return {status, sup::describe(err, sys)};
}

class actor_backend : public control_backend {
public:
  actor_backend(caf::actor_system& sys, control_actor control,
                caf::timespan timeout)
    : sys_(sys), control_(std::move(control)), timeout_(timeout) {
  }

  result<node_status, backend_error> status() override {
    result<node_status, backend_error> out = node_status{};
    caf::scoped_actor self{sys_};
    self->request(control_, timeout_, status_atom::value)
      .receive([&](node_status& st) { out = std::move(st); },
               [&](caf::error& err) { out = to_backend_error(err, sys_); });
    return out;
  }

  result<std::vector<file_sync>, backend_error>
  sync(const control_target& target) override {
    result<std::vector<file_sync>, backend_error> out
      = std::vector<file_sync>{};
    caf::scoped_actor self{sys_};
    self->request(control_, timeout_, sync_atom::value, target.file)
      .receive([&](std::vector<file_sync>& x) { out = std::move(x); },
               [&](caf::error& err) { out = to_backend_error(err, sys_); });
    if (out && target.version)
      if (auto checked = check_version(*target.version); !checked)
        return checked.error();
    return out;
  }

  result<void, backend_error> reload(const control_target& target) override {
    return ask_ok(reload_atom::value, target.file);
  }

private:
  /// One request the control actor answers with ok or an error.
  template <class... Ts>
  result<void, backend_error> ask_ok(Ts... xs) {
    result<void, backend_error> out;
    caf::scoped_actor self{sys_};
    self->request(control_, timeout_, std::move(xs)...)
      .receive([](caf::ok_atom) {},
               [&](caf::error& err) { out = to_backend_error(err, sys_); });
    return out;
  }

  /// After a sync the files hold the source's current version (each
  /// writer's sync(version)), which meets any version up to it; a later one
  /// does not exist yet, and waiting for it could hold the request for ever.
  result<void, backend_error> check_version(uint64_t version) {
    auto st = status();
    if (!st)
      return st.error();
    auto current = st->source.version;
    if (current < version)
      return backend_error{409, "the source is at version "
                                  + std::to_string(current) + ", not yet "
                                  + std::to_string(version)};
    return {};
  }

  caf::actor_system& sys_;
  control_actor control_;
  caf::timespan timeout_;
};

} // namespace

control_actor spawn_control(caf::actor_system& sys, control_spec spec) {
  return sys.spawn(control,
                   std::make_shared<const control_spec>(std::move(spec)));
}

std::unique_ptr<control_backend> make_actor_backend(caf::actor_system& sys,
                                                    control_actor control,
                                                    caf::timespan timeout) {
  return std::make_unique<actor_backend>(sys, std::move(control), timeout);
}

} // namespace mcfg
