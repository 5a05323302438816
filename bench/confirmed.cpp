// The confirmed group (issue 20, README "Sync"): a source saved until a real
// memcached lets the new user in, and until `mcfgctl sync` says so. One
// mcfgd (the built binary) follows a local source; its one
// memcached_passwords file is refreshed with
// `{signal: HUP, pidfile, expect: memcached, verify: {memcached: ...}}`, and
// Debian's memcached (started first, on a port picked before node.yaml is
// written) reads that file with -Y.
//
// Each repetition saves a source that adds a new user (and drops the one
// added before, as memcached reads at most 8), renamed into place as an
// editor saves, and runs `mcfgctl sync` at once on a second thread, as an
// operator would. From the save, the main thread times:
// - mcfgd's part: until the auth file holds the new user (polled every
//   200 us, as cluster.cpp does). The signal is not visible from outside;
//   mcfgd sends it after the rename, the directory's fsync and a hand-off
//   to the refresher's thread, so the rename stands in for it, and the
//   floor's own time up to its rename is reported beside the floor;
// - memcached's part: from there until memcached lets the new user in (a
//   fresh connection's ASCII auth every ~2 ms). memcached's SIGHUP handler
//   only sets a flag; its once-a-second clock tick re-reads the file, so
//   this part is where the save fell in that second;
// - the confirmation: until `mcfgctl sync` returned, and how long after
//   memcached first let the user in (the target: within 50 ms of the tick,
//   which came between the last refusal the bench saw and that login).
// Right after sync returns, the sync thread tries the new user and the one
// the version removed: a sync that returns while memcached still disagrees
// is counted, not hidden.
//
// The save's phase in memcached's second is varied on purpose (the golden
// ratio's fractions of a second after the last tick seen). The durable
// write floor is measured in the same run, interleaved: five samples back
// to back per repetition, as the other groups take it, and one after as long
// a rest as the save has (see idle_ns).
#include <signal.h>

#include <memory>
#include <stdexcept>

#include "bench/bench_support.hpp"
#include "support/memcached_client.hpp"
#include "support/memcached_server.hpp"
#include "support/process_helpers.hpp"

namespace mcfg::bench {
namespace {

using std::chrono::milliseconds;

constexpr int64_t second_ns = 1'000'000'000;

/// Thrown instead of fail(), so that the stack unwinds and the children
/// (mcfgd, memcached) are stopped before the group exits.
void require(bool ok, const std::string& what) {
  if (!ok)
    throw std::runtime_error(what);
}

// -- the source and the file it renders to -----------------------------------

std::string user_of(uint64_t n) {
  return "u" + std::to_string(n);
}

std::string password_of(uint64_t n) {
  return "Pw-u" + std::to_string(n) + "-bench";
}

/// Repetition n's source: a user who stays, and user n (n - 1 is gone).
std::string source_at(uint64_t n) {
  return "users:\n  bench: {password: Pw-bench-stays}\n  " + user_of(n)
         + ": {password: " + password_of(n) + "}\n";
}

/// What memcached_passwords renders for source_at(n): sorted lines.
std::string auth_at(uint64_t n) {
  return "bench:Pw-bench-stays\n" + user_of(n) + ":" + password_of(n) + "\n";
}

/// As an editor that saves atomically: a new file renamed over the source.
void save_by_rename(const std::string& path, const std::string& text) {
  auto tmp = path + ".new";
  std::ofstream{tmp, std::ios::binary | std::ios::trunc} << text;
  require(::rename(tmp.c_str(), path.c_str()) == 0, "rename " + tmp);
}

// -- the floor, split at its rename ------------------------------------------

/// The durable replacement of bench_support's raw_replace, timed up to its
/// rename (what the bench sees of mcfgd's write) and in all (the floor).
void time_split_floor(distribution& total, distribution& to_rename,
                      const std::string& dir, const std::string& bytes) {
  auto tmp = dir + "/file.tmp", path = dir + "/file";
  auto t0 = now_ns();
  int fd = ::open(tmp.c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  require(fd >= 0, "floor: open " + tmp);
  bool ok = ::write(fd, bytes.data(), bytes.size())
            == static_cast<ssize_t>(bytes.size());
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  ok = ::rename(tmp.c_str(), path.c_str()) == 0 && ok;
  auto renamed = now_ns();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ok = dfd >= 0 && ::fsync(dfd) == 0 && ::close(dfd) == 0 && ok;
  require(ok, "floor: " + std::string{std::strerror(errno)});
  to_rename.add_ns(renamed - t0);
  total.add_ns(now_ns() - t0);
}

// -- memcached, mcfgd, mcfgctl -----------------------------------------------

/// Whether memcached lets `user` in, on a fresh connection (auth only).
bool lets_in(uint16_t port, const std::string& user, const std::string& pw) {
  test::memcached_client client{port};
  return client.authenticate(user, pw) == test::memcached_auth_ok;
}

struct ctl_result {
  int code = -2;
  std::string out;
  std::string err;
  /// now_ns() once the process was reaped.
  int64_t done_ns = 0;
};

/// memcached on the auth file, then mcfgd keeping it with a verify.
struct verified_node {
  std::string dir;
  std::string source = dir + "/cluster.yaml";
  std::string auth = dir + "/run/memcached.auth";
  std::string node_yaml = dir + "/node.yaml";
  uint16_t port = 0;
  std::unique_ptr<test::memcached_server> memcached;
  std::unique_ptr<test::child_process> mcfgd;

  explicit verified_node(std::string folder) : dir(std::move(folder)) {
  }

  ~verified_node() {
    if (mcfgd) {
      mcfgd->signal(SIGTERM);
      mcfgd->wait_exit(std::chrono::seconds(10));
    }
  }

  /// `mcfgctl --config node.yaml ARGS...`, its output in files named `tag`.
  ctl_result ctl(const std::vector<std::string>& args,
                 const std::string& tag) const {
    std::vector<std::string> argv{MCFGCTL, "--config", node_yaml};
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = dir + "/" + tag + ".out", err = dir + "/" + tag + ".err";
    test::child_process proc{argv, out, err};
    ctl_result r;
    r.code = proc.wait_exit_code(std::chrono::seconds(15)).value_or(-3);
    r.done_ns = now_ns();
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
  }

  std::string mcfgd_stderr() const {
    return read_file(dir + "/mcfgd.err").substr(0, 2000);
  }

  /// Returns once `mcfgctl health` says the node is healthy.
  void start() {
    std::filesystem::create_directories(dir + "/run");
    std::ofstream{source} << source_at(0);
    std::ofstream{auth} << auth_at(0);
    port = test::free_loopback_port();
    test::memcached_options o;
    o.auth_file = auth;
    o.pidfile = dir + "/run/memcached.pid";
    o.port = port;
    memcached = std::make_unique<test::memcached_server>(o);
    std::ofstream{node_yaml}
      << "source: cluster.yaml\nfiles:\n  - module: memcached_passwords\n"
         "    path: run/memcached.auth\n"
         "    refresh: {signal: HUP, pidfile: run/memcached.pid, "
         "expect: memcached, verify: {memcached: \"127.0.0.1:"
      << port << "\", timeout: 5s}}\n";
    mcfgd = std::make_unique<test::child_process>(
      std::vector<std::string>{MCFGD, "--config", node_yaml, "--log-level",
                               "warning"},
      dir + "/mcfgd.out", dir + "/mcfgd.err");
    auto deadline = steady::now() + std::chrono::seconds(15);
    while (ctl({"health"}, "health").code != 0) {
      require(steady::now() < deadline,
              "mcfgd not healthy within 15 s: " + mcfgd_stderr());
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
};

// -- one repetition ----------------------------------------------------------

/// One save, as the main thread and the sync thread saw it (now_ns()).
struct sample {
  int64_t saved = 0;
  int64_t renamed = 0;
  int64_t let_in = 0;
  /// The last refusal before let_in: memcached's tick came in between.
  int64_t refused = 0;
  int64_t synced = 0;
  int sync_code = -2;
  bool said_confirmed = false;
  /// Right after sync returned 0: memcached refused the new user, or still
  /// let in the one the version removed.
  bool new_refused_after = false;
  bool removed_let_in_after = false;
  std::string sync_err;
};

/// The sync thread: `mcfgctl sync`, then at once the logins it vouches for.
void sync_and_check(const verified_node& node, uint64_t n, sample& s) {
  try {
    auto r = node.ctl({"sync"}, "sync");
    s.synced = r.done_ns;
    s.sync_code = r.code;
    s.said_confirmed = r.out.find(" confirmed: ") != std::string::npos;
    s.sync_err = r.err;
    if (r.code != 0)
      return;
    s.new_refused_after = !lets_in(node.port, user_of(n), password_of(n));
    s.removed_let_in_after = lets_in(node.port, user_of(n - 1),
                                     password_of(n - 1));
  } catch (const std::exception& e) {
    s.sync_err = e.what();
  }
}

/// Polls `pred` every `every` for up to 10 s; now_ns() when it held.
template <class Predicate>
int64_t poll_until(Predicate pred, std::chrono::microseconds every,
                   const std::string& what) {
  auto deadline = steady::now() + std::chrono::seconds(10);
  for (;;) {
    if (pred())
      return now_ns();
    require(steady::now() < deadline, what + " within 10 s");
    std::this_thread::sleep_for(every);
  }
}

/// Saves source_at(n) and times it until memcached lets user n in and the
/// concurrent sync returned.
sample save_and_time(const verified_node& node, uint64_t n) {
  sample s;
  s.saved = now_ns();
  save_by_rename(node.source, source_at(n));
  std::thread syncer{[&] { sync_and_check(node, n, s); }};
  try {
    auto expected = auth_at(n);
    s.renamed = poll_until([&] { return read_file(node.auth) == expected; },
                           std::chrono::microseconds(200),
                           "mcfgd did not write " + user_of(n));
    s.refused = s.renamed;
    s.let_in = poll_until(
      [&] {
        if (lets_in(node.port, user_of(n), password_of(n)))
          return true;
        s.refused = now_ns();
        return false;
      },
      std::chrono::microseconds(2000),
      "memcached did not let " + user_of(n) + " in");
  } catch (...) {
    syncer.join();
    throw;
  }
  // Joined before `s` is returned (copied): the thread writes into it.
  syncer.join();
  return s;
}

// -- the run -----------------------------------------------------------------

/// How long the machine is left idle before each save, and before the idle
/// floor taken ahead of it. After 100 ms or more of idleness a durable write
/// costs this guest 2-3 x what it costs back to back (its vCPUs and the
/// disk's queue go cold), the floor's as much as mcfgd's: the saves here are
/// a second apart by construction, so the like-for-like floor is one taken
/// after as long a rest.
constexpr int64_t idle_ns = 120'000'000;

struct figures {
  /// The floor back to back (as the other groups take it), and once per
  /// repetition after `idle_ns` of rest, as the save is.
  distribution floor, floor_to_rename, idle_floor, idle_floor_to_rename;
  distribution mcfgd, memcached, enforced, sync, lag, idle_sync;
  double phase_min_ms = 1000, phase_max_ms = 0;
  size_t samples = 0, syncs_failed = 0, not_said_confirmed = 0,
         new_refused_after = 0, removed_let_in_after = 0, lag_over_50ms = 0;
  /// Syncs that returned before the bench's own poll saw the user let in.
  /// Not a premature sync by itself: mcfgd's probe may see the tick up to
  /// one poll (~2 ms) earlier. The login tried right after sync returned
  /// (new_refused_after) is what says a sync came before memcached did.
  size_t syncs_early = 0;
  /// let_in - refused: how far before let_in memcached's tick may lie.
  distribution tick_window;
  std::string first_sync_error;
};

void add(figures& f, const sample& s, int64_t tick_ns) {
  ++f.samples;
  f.mcfgd.add_ns(s.renamed - s.saved);
  f.memcached.add_ns(s.let_in - s.renamed);
  f.enforced.add_ns(s.let_in - s.saved);
  f.tick_window.add_ns(s.let_in - s.refused);
  auto phase_ms = static_cast<double>((s.saved - tick_ns) % second_ns) / 1e6;
  f.phase_min_ms = std::min(f.phase_min_ms, phase_ms);
  f.phase_max_ms = std::max(f.phase_max_ms, phase_ms);
  if (s.sync_code != 0) {
    ++f.syncs_failed;
    if (f.first_sync_error.empty())
      f.first_sync_error = "exit " + std::to_string(s.sync_code) + ": "
                           + s.sync_err;
    return;
  }
  f.sync.add_ns(s.synced - s.saved);
  f.lag.add_ns(s.synced - s.let_in);
  f.lag_over_50ms += s.synced - s.let_in > 50'000'000 ? 1 : 0;
  f.syncs_early += s.synced < s.let_in ? 1 : 0;
  f.not_said_confirmed += s.said_confirmed ? 0 : 1;
  f.new_refused_after += s.new_refused_after ? 1 : 0;
  f.removed_let_in_after += s.removed_let_in_after ? 1 : 0;
}

/// The first moment `phase` (a fraction of a second) after a tick of
/// memcached's clock (`tick_ns` was one) that leaves room for the idle
/// floor and the rest before the save.
int64_t next_at_phase(int64_t tick_ns, double phase) {
  auto t = tick_ns
           + static_cast<int64_t>(phase * static_cast<double>(second_ns));
  for (auto earliest = now_ns() + 2 * idle_ns + 10'000'000; t < earliest;)
    t += second_ns;
  return t;
}

void sleep_until_ns(int64_t t) {
  std::this_thread::sleep_until(
    steady::time_point{std::chrono::nanoseconds{t}});
}

double ms(double us) {
  return us / 1000.0;
}

void print_floors(figures& f, json_line& line) {
  line.add("ratio_p50_to_floor", f.mcfgd.p50() / f.floor.p50(), 3)
    .add("ratio_p10_to_floor", f.mcfgd.pct(0.10) / f.floor.pct(0.10), 3)
    .add("ratio_p50_to_idle_floor", f.mcfgd.p50() / f.idle_floor.p50(), 3)
    .add("ratio_p10_to_idle_floor", f.mcfgd.pct(0.10) / f.idle_floor.pct(0.10),
         3)
    .add("floor_p50_us", f.floor.p50())
    .add("floor_p99_us", f.floor.p99())
    .add("floor_to_rename_p50_us", f.floor_to_rename.p50())
    .add("idle_floor_p50_us", f.idle_floor.p50())
    .add("idle_floor_p99_us", f.idle_floor.p99())
    .add("idle_floor_to_rename_p50_us", f.idle_floor_to_rename.p50());
}

void print(figures& f) {
  json_line line{"confirmed"};
  line.add("samples", f.samples)
    .add("p50_us", f.mcfgd.p50())
    .add("p99_us", f.mcfgd.p99());
  print_floors(f, line);
  line.add("memcached_p50_ms", ms(f.memcached.p50()))
    .add("memcached_p99_ms", ms(f.memcached.p99()))
    .add("enforced_p50_ms", ms(f.enforced.p50()))
    .add("enforced_p99_ms", ms(f.enforced.p99()))
    .add("phase_min_ms", f.phase_min_ms)
    .add("phase_max_ms", f.phase_max_ms)
    .add("syncs_failed", f.syncs_failed);
  if (!f.sync.us.empty())
    line.add("sync_p50_ms", ms(f.sync.p50()))
      .add("sync_p99_ms", ms(f.sync.p99()))
      .add("lag_p50_ms", ms(f.lag.p50()))
      .add("lag_p99_ms", ms(f.lag.p99()))
      .add("lag_min_ms", ms(f.lag.pct(0)))
      .add("lag_over_50ms", f.lag_over_50ms)
      .add("syncs_early", f.syncs_early)
      .add("tick_window_max_ms", ms(f.tick_window.pct(1.0)))
      .add("lag_outside_0_50ms", f.lag_over_50ms + f.new_refused_after)
      .add("not_said_confirmed", f.not_said_confirmed)
      .add("new_refused_after_sync", f.new_refused_after)
      .add("removed_let_in_after_sync", f.removed_let_in_after);
  line.add("idle_sync_p50_ms", ms(f.idle_sync.p50())).print();
  if (!f.first_sync_error.empty())
    std::fprintf(stderr, "mcfg_bench: confirmed: a sync failed (%s)\n",
                 f.first_sync_error.c_str());
}

/// Repetition r (counted from 0): the floors, the save at its phase of
/// memcached's second, a sync with nothing to wait for. The tick the save
/// was let in at.
int64_t repetition(const verified_node& node, figures& f, uint64_t r,
                   int64_t tick_ns, const std::string& floor_dir,
                   const std::string& bytes) {
  for (int i = 0; i < 5; ++i)
    time_split_floor(f.floor, f.floor_to_rename, floor_dir, bytes);
  // The golden ratio's multiples spread any number of saves evenly over
  // the second.
  auto phase = std::fmod(static_cast<double>(r) * 0.6180339887, 1.0);
  auto at = next_at_phase(tick_ns, phase);
  sleep_until_ns(at - idle_ns);
  time_split_floor(f.idle_floor, f.idle_floor_to_rename, floor_dir, bytes);
  sleep_until_ns(at);
  auto s = save_and_time(node, r + 2);
  add(f, s, tick_ns);
  auto t0 = now_ns();
  auto idle = node.ctl({"sync"}, "idle");
  require(idle.code == 0, "sync with nothing to wait for: " + idle.err);
  f.idle_sync.add_ns(idle.done_ns - t0);
  // memcached let the user in just after a tick: the next phase counts from
  // there (its clock drifts by each tick's own work).
  return s.let_in;
}

void run(const options& opt) {
  scratch_dir scratch{opt.dir, "confirmed"};
  auto floor_dir = scratch.sub("floor");
  auto bytes = floor_bytes();
  verified_node node{scratch.sub("node")};
  node.start();
  // A first save, not counted: warms mcfgd up and finds memcached's tick.
  auto tick_ns = save_and_time(node, 1).let_in;
  figures f;
  const uint64_t reps = opt.quick ? 6 : 20;
  for (uint64_t r = 0; r < reps; ++r)
    tick_ns = repetition(node, f, r, tick_ns, floor_dir, bytes);
  print(f);
}

} // namespace

void confirmed_group(const options& opt) {
  try {
    run(opt);
  } catch (const std::exception& e) {
    fail(std::string{"confirmed: "} + e.what());
  }
}

} // namespace mcfg::bench
