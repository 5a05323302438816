// The io_stall group (issue 23): what four files on a hung disk cost the
// other 996 of one node, and whether status still answers and says which
// four. In this process, no mcfgd: mcfgd's `files` supervisor
// (files_child, one memcached_passwords writer per file) under a root
// supervisor on a real actor system, its io pool (make_io_pool: 16
// threads) and status board, and the control actor status is asked
// through (spawn_control, make_actor_backend; no store is registered, so
// status is the board's).
//
// The file port is the POSIX one, except that write_file of the four
// chosen files blocks for 20 s (10 s with --quick) at every call, as an
// fsync on a hung disk does, until the group releases it at the end. The
// retry deadline is node.yaml's default, 10 s (5 s with --quick): each of
// the four writers gives up once its attempt has been stuck that long, and
// is restarted.
//
// Figures (one JSON line, `io_stall`):
// - status_p50_ms / status_p99_ms: backend->status() plus status_json()
//   of the default (files with a problem), every 50 ms for 25 s (12 s),
//   and the two parts apart;
// - landed / others_landed_s: how many of the 996 others hold the source's
//   users, and when the last did;
// - edit_landed_s: an edit of one user published at the deadline + 3 s,
//   while the four are stuck and their restarted writers wait, until the
//   996 hold it;
// - gave_up: the four shown with restarts >= 1 or a give-up reason at the
//   deadline + 2 s (12 s); stuck_reported: how many of the four every
//   default status listed while they were stuck (from 1 s on).
#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "bench/bench_support.hpp"
#include "memcached_cfg/actors/file_port.hpp"
#include "memcached_cfg/actors/io_pool.hpp"
#include "memcached_cfg/control/api.hpp"
#include "memcached_cfg/control/bridge.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/node/node_tree.hpp"
#include "memcached_cfg/node/status_board.hpp"
#include "memcached_cfg/source/source_of_truth.hpp"
#include "support/forwarding_port.hpp"
#include "support/user_value.hpp"

namespace mcfg::bench {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr size_t file_count = 1'000;
/// The stuck files: spread over node.yaml (the first and the last among
/// them), so that a pool taking jobs in order meets them early and late.
constexpr size_t stuck_index[] = {0, 333, 666, 999};

bool is_stuck(size_t i) {
  return std::find(std::begin(stuck_index), std::end(stuck_index), i)
         != std::end(stuck_index);
}

/// The POSIX port, whose write_file of `stuck` paths (the temp file of a
/// stuck file) blocks for `stall` per call, or until release(). Counts the
/// calls stuck, and the most stuck at once: pool threads a hung disk holds.
class stalling_port final : public test::forwarding_port {
public:
  stalling_port(std::vector<std::string> stuck, milliseconds stall)
    : forwarding_port(make_posix_file_port()), stuck_(std::move(stuck)),
      stall_(stall) {
  }

  void release() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      released_ = true;
    }
    cv_.notify_all();
  }

  size_t calls_stalled() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return calls_;
  }

  size_t most_at_once() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return most_;
  }

  std::error_code write_file(const std::string& path, std::string_view bytes,
                             mode_t mode, bool durable) override {
    if (stuck(path)) {
      std::unique_lock<std::mutex> guard{mtx_};
      ++calls_;
      most_ = std::max(most_, ++now_);
      cv_.wait_for(guard, stall_, [this] { return released_; });
      --now_;
    }
    return forwarding_port::write_file(path, bytes, mode, durable);
  }

private:
  /// `path` is a stuck file's temp file ("<file>.tmp") or the file.
  bool stuck(const std::string& path) const {
    for (auto& p : stuck_)
      if (path.compare(0, p.size(), p) == 0)
        return true;
    return false;
  }

  std::vector<std::string> stuck_;
  milliseconds stall_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool released_ = false;
  size_t calls_ = 0, now_ = 0, most_ = 0;
};

// -- the source and what the files hold -------------------------------------

/// The group's name in its users' passwords (bench_support.hpp).
constexpr const char* group = "stall";

/// The source at edit `edit`, which every file renders as
/// source_auth_text(group, edit).
snapshot users_at(uint64_t edit) {
  snapshot out;
  for (size_t i = 0; i < source_users; ++i)
    out.emplace("users/u" + std::to_string(i),
                test::user(source_password(group, i, edit)));
  return out;
}

/// How many of `paths` hold `expected`, checked in order from `*next` on
/// (moving it past those that do); the others are not read again.
size_t advance(const std::vector<std::string>& paths,
               const std::string& expected, size_t& next) {
  while (next < paths.size() && file_holds(paths[next], expected))
    ++next;
  return next;
}

/// The node.yaml of the group: the files under files/, the deadline.
node_config make_config(const std::string& dir, caf::timespan deadline) {
  std::string yaml = "source: cluster.yaml\nretry: {deadline: "
                     + std::to_string(deadline / seconds(1)) + "s}\nfiles:\n";
  for (size_t i = 0; i < file_count; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "f%04zu.auth", i);
    yaml += "  - module: memcached_passwords\n    path: files/"
            + std::string{name} + "\n";
  }
  auto loaded = parse_node_config(yaml, dir + "/node.yaml");
  if (!loaded.ok())
    fail("io_stall: node.yaml: " + loaded.errors.front().to_string());
  return std::move(*loaded.value);
}

/// How many of `pool`'s `threads` threads are free now: as many jobs as it
/// has threads, each holding its thread for 100 ms; those that start
/// within 50 ms found a free one (the others wait for one of those, or for
/// a thread a stuck file holds). Returns once the first round is over.
size_t free_threads(io_pool& pool, size_t threads) {
  struct probe_state {
    std::mutex mtx;
    size_t prompt = 0;
  };
  // Shared: the probes that wait behind a stuck job run after this returns.
  auto st = std::make_shared<probe_state>();
  auto t0 = now_ns();
  for (size_t i = 0; i < threads; ++i)
    pool.submit([st, t0] {
      {
        std::lock_guard<std::mutex> guard{st->mtx};
        st->prompt += now_ns() - t0 < 50'000'000;
      }
      std::this_thread::sleep_for(milliseconds(100));
    });
  std::this_thread::sleep_for(milliseconds(60));
  std::lock_guard<std::mutex> guard{st->mtx};
  return st->prompt;
}

// -- status, as the sampler saw it -----------------------------------------

struct samples {
  distribution total, backend, json; // us
  /// `total` from 2 s (the others landed) until the edit: the four stuck,
  /// nothing else to do.
  distribution stuck_only;
  distribution bytes;
  size_t taken = 0;
  /// The least of the four listed by a default status from 1 s on.
  size_t stuck_listed_min = std::size(stuck_index);
  /// The most files a default status listed from 1 s until the edit: the
  /// four, once the others landed.
  size_t most_listed = 0;
  /// Of the four, shown as given up in the first status at deadline + 2 s;
  /// -1 until then.
  int gave_up = -1;
  /// When a status first showed one of the four given up (s; -1: never).
  double first_give_up_s = -1;
  std::string error;
};

/// Asks status every 50 ms from `t0` until `until` (ns since t0).
void sample(control_backend& backend, const node_config& cfg, int64_t t0,
            int64_t until, int64_t gave_up_at, int64_t edit_at, samples& out) {
  std::vector<std::string> quoted;
  for (auto i : stuck_index)
    quoted.push_back("\"" + cfg.files[i].path + "\"");
  for (int64_t k = 0;; ++k) {
    auto at = t0 + k * 50'000'000;
    if (at - t0 > until)
      return;
    std::this_thread::sleep_for(std::chrono::nanoseconds(at - now_ns()));
    auto s0 = now_ns();
    auto st = backend.status();
    auto s1 = now_ns();
    if (!st) {
      out.error = "status failed: " + st.error().message;
      return;
    }
    auto text = status_json(*st, status_files::problems);
    auto s2 = now_ns();
    out.total.add_ns(s2 - s0);
    out.backend.add_ns(s1 - s0);
    out.json.add_ns(s2 - s1);
    out.bytes.us.push_back(static_cast<double>(text.size()));
    ++out.taken;
    auto since = s0 - t0;
    size_t listed = 0;
    for (auto& q : quoted)
      listed += text.find(q) != std::string::npos;
    if (since >= 2'000'000'000 && since < edit_at)
      out.stuck_only.add_ns(s2 - s0);
    if (since >= 1'000'000'000) {
      out.stuck_listed_min = std::min(out.stuck_listed_min, listed);
      auto doc = nlohmann::json::parse(text, nullptr, false);
      if (since < edit_at && !doc.is_discarded())
        out.most_listed = std::max(out.most_listed, doc["files"].size());
    }
    int given_up = 0;
    for (auto i : stuck_index) {
      auto& f = st->files.at(i);
      given_up += f.restarts >= 1 || !f.last_give_up.empty();
    }
    if (given_up > 0 && out.first_give_up_s < 0)
      out.first_give_up_s = static_cast<double>(since) / 1e9;
    if (since >= gave_up_at && out.gave_up < 0)
      out.gave_up = given_up;
  }
}

} // namespace

void io_stall_group(const options& opt) {
  const auto stall = opt.quick ? seconds(10) : seconds(20);
  const auto deadline = opt.quick ? seconds(5) : seconds(10);
  const auto window = opt.quick ? seconds(12) : seconds(25);
  scratch_dir scratch{opt.dir, "io_stall"};
  auto cfg = make_config(scratch.path(), deadline);
  std::vector<std::string> stuck, others;
  for (size_t i = 0; i < cfg.files.size(); ++i)
    (is_stuck(i) ? stuck : others).push_back(cfg.files[i].path);

  // The pool is destroyed (its last jobs run, its threads joined) once
  // every writer is gone, as in mcfgd.
  auto pool = make_io_pool(cfg);
  auto board = make_status_board(cfg);
  auto port = std::make_shared<stalling_port>(stuck, stall);
  auto truth = source_of_truth::make(users_at(0));
  bench_system bs{opt};
  auto& sys = *bs.sys;

  control_spec spec{{}, store_child_id, refresher_child_id, {}, board};
  for (size_t i = 0; i < cfg.files.size(); ++i)
    spec.files.emplace_back(cfg.files[i].path, writer_child_id(i));
  auto control = spawn_control(sys, std::move(spec));
  auto backend = make_actor_backend(sys, control, seconds(30));

  auto t0 = now_ns();
  auto root = sup::start_supervisor(
    sys, root_flags(cfg), {files_child(cfg, truth, port, pool, board)});
  check(static_cast<bool>(root), "io_stall: the files did not start");
  auto started_s = static_cast<double>(now_ns() - t0) / 1e9;

  samples s;
  auto until = std::chrono::nanoseconds(window).count();
  auto gave_up_at = std::chrono::nanoseconds(deadline + seconds(2)).count();
  auto edit_after = std::chrono::nanoseconds(deadline + seconds(3)).count();
  std::thread sampler{
    [&] { sample(*backend, cfg, t0, until, gave_up_at, edit_after, s); }};

  // The 996 others, polled every 2 ms until they all hold the users, then
  // (at the deadline + 3 s) an edit, polled until they all hold it.
  // On the way, the pool's free threads, once before the four give up and
  // once after their writers were restarted.
  size_t next = 0;
  double landed_s = -1;
  auto poll_until = [&](int64_t at) {
    while (now_ns() < at) {
      if (landed_s < 0
          && advance(others, source_auth_text(group, 0), next) == others.size())
        landed_s = static_cast<double>(now_ns() - t0) / 1e9;
      std::this_thread::sleep_for(milliseconds(2));
    }
  };
  auto threads = std::min(cfg.files.size(), cfg.io_threads);
  poll_until(t0 + std::chrono::nanoseconds(deadline - seconds(2)).count());
  auto free_before = free_threads(*pool, threads);
  poll_until(t0 + std::chrono::nanoseconds(deadline + seconds(1)).count());
  auto free_after = free_threads(*pool, threads);
  poll_until(t0 + edit_after);
  size_t landed = next;
  for (size_t i = next; i < others.size(); ++i)
    landed += file_holds(others[i], source_auth_text(group, 0));

  truth->publish(users_at(1));
  auto e0 = now_ns();
  double edit_s = -1;
  size_t edited = 0;
  while (now_ns() - t0 < until) {
    if (advance(others, source_auth_text(group, 1), edited) == others.size()) {
      edit_s = static_cast<double>(now_ns() - e0) / 1e9;
      break;
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
  sampler.join();
  size_t stuck_landed = 0;
  for (auto& p : stuck)
    stuck_landed += std::filesystem::exists(p);

  // Released first: a writer's job stuck in the port would otherwise hold
  // the shutdown (and the pool's join) for the rest of its stall.
  auto calls = port->calls_stalled(), most = port->most_at_once();
  port->release();
  stop(sys, *root);
  caf::anon_send_exit(control, caf::exit_reason::user_shutdown);
  backend.reset();
  pool.reset();

  json_line{"io_stall"}
    .add("files", cfg.files.size())
    .add("stuck", stuck.size())
    .add("stall_s", static_cast<double>(stall.count()), 0)
    .add("deadline_s", static_cast<double>(deadline.count()), 0)
    .add("io_threads", threads)
    .add("started_s", started_s, 3)
    .add("landed", landed)
    .add("others_landed_s", landed_s, 3)
    .add("edit_landed", edited)
    .add("edit_landed_s", edit_s, 3)
    .add("status_p50_ms", s.total.p50() / 1000.0, 2)
    .add("status_p99_ms", s.total.p99() / 1000.0, 2)
    .add("status_max_ms", s.total.pct(1.0) / 1000.0, 2)
    .add("stuck_only_p50_ms", s.stuck_only.p50() / 1000.0, 2)
    .add("stuck_only_p99_ms", s.stuck_only.p99() / 1000.0, 2)
    .add("backend_p50_ms", s.backend.p50() / 1000.0, 2)
    .add("json_p50_ms", s.json.p50() / 1000.0, 3)
    .add("status_bytes", s.bytes.p50(), 0)
    .add("status_samples", s.taken)
    .add("most_listed", s.most_listed)
    .add("stuck_reported", s.stuck_listed_min)
    .add("gave_up", s.gave_up)
    .add("first_give_up_s", s.first_give_up_s, 2)
    .add("stalled_calls", calls)
    .add("stalled_at_once_max", most)
    .add("stuck_landed", stuck_landed)
    .add("pool_free_before_give_up", free_before)
    .add("pool_free_after_give_up", free_after)
    .print();
  check(s.error.empty(), "io_stall: " + s.error);
  check(landed == others.size(), "io_stall: " + std::to_string(landed) + " of "
                                   + std::to_string(others.size())
                                   + " other files landed");
  check(edited == others.size(), "io_stall: the edit reached "
                                   + std::to_string(edited) + " of "
                                   + std::to_string(others.size()));
  check(s.stuck_listed_min == stuck.size(),
        "io_stall: a status left out a stuck file");
  check(s.gave_up == static_cast<int>(stuck.size()),
        "io_stall: " + std::to_string(s.gave_up) + " stuck files gave up");
}

} // namespace mcfg::bench
