// The scale group (issue 23, "ten thousand files in one node"): the real
// node (mcfgd, the built binary) following a local source of 8 users, with
// N memcached_passwords files in one folder, for N = 1,000 and 10,000
// (1,000 only with --quick).
//
// Per N, one JSON line (`scale_<N>`), in the order they are taken:
// - start_s: from starting mcfgd until every file holds the source's
//   users; on the way, until the folder's lock file appears (locking_s:
//   node.yaml read and checked, the control socket up) and until the first
//   file holds them (first_file_s: the writers run);
// - what the node costs once written: threads, open descriptors, resident
//   memory (VmRSS, and per file), and CPU (utime + stime, and the context
//   switches of all its threads: how often it wakes) over an idle stretch
//   of 10 s (3 s), which starts once the start's deadline timers fired
//   (see run_n);
// - GET /v1/status over the control socket: the default answer (a summary
//   and the files with a problem: none here), 50 times, and one
//   ?files=all;
// - edit_s: from renaming an edited source into place (one user's new
//   password) until every file holds it; the median of 2 edits (1);
// - against the floor of the same run: the same N durable replacements
//   (temp file, fsync, rename, the directory's fsync; as many bytes) by a
//   plain pool of as many threads as mcfgd's io pool has (min(N, 16)), in
//   this process: on files not there yet before mcfgd starts
//   (floor_start_s), and replacing them before each edit (floor_edit_s).
//
// Files are compared with what memcached_passwords renders (sorted
// "user:password" lines), never printed. mcfgd keeps one lock file open
// per folder (lock_files in programs/node_locks.cpp); the group raises its own
// RLIMIT_NOFILE, which mcfgd inherits, for the files its floor and polling
// hold (within the hard limit).
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>

#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "bench/bench_support.hpp"
#include "e2e/raw_http.hpp"
#include "support/process_helpers.hpp"

namespace mcfg::bench {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

/// Thrown instead of fail(), so that the stack unwinds and mcfgd is stopped
/// before the group exits.
void require(bool ok, const std::string& what) {
  if (!ok)
    throw std::runtime_error(what);
}

double seconds_of(int64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

double ms_of(double us) {
  return us / 1000.0;
}

/// Sleeps until now_ns() reaches `at` (at once if it has).
void sleep_until_ns(int64_t at) {
  auto left = at - now_ns();
  if (left > 0)
    std::this_thread::sleep_for(std::chrono::nanoseconds(left));
}

constexpr int64_t second_ns = 1'000'000'000;

// -- the source and what every file holds -------------------------------------

/// The group's name in its users' passwords (bench_support.hpp).
constexpr const char* group = "scale";

/// The source at edit `version`, which every file renders as
/// source_auth_text(group, version).
std::string source_at(uint64_t version) {
  std::string out = "users:\n";
  for (size_t i = 0; i < source_users; ++i)
    out += "  u" + std::to_string(i)
           + ": {password: " + source_password(group, i, version) + "}\n";
  return out;
}

/// As an editor that saves atomically: a new file renamed over the source.
void save_by_rename(const std::string& path, const std::string& text) {
  auto tmp = path + ".new";
  std::ofstream{tmp, std::ios::binary | std::ios::trunc} << text;
  require(::rename(tmp.c_str(), path.c_str()) == 0, "rename " + tmp);
}

/// "f00042.auth": fixed width, so that no name is a prefix of another.
std::string file_name(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "f%05zu.auth", i);
  return buf;
}

/// Waits until every file in one folder holds the same bytes. Woken by
/// inotify on the folder (a rename into it), it checks the files in
/// node.yaml order from the first one not seen right yet and stops at the
/// first that is not: writers start, and the pool takes their jobs, in that
/// order, so each file is mostly read once or twice, not once per round.
class folder_waiter {
public:
  explicit folder_waiter(const std::string& dir)
    : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    require(fd_ >= 0 && ::inotify_add_watch(fd_, dir.c_str(), IN_MOVED_TO) >= 0,
            "inotify on " + dir);
  }
  ~folder_waiter() {
    ::close(fd_);
  }
  folder_waiter(const folder_waiter&) = delete;
  folder_waiter& operator=(const folder_waiter&) = delete;

  /// now_ns() once every path held `expected`; `alive` says whether the
  /// node still runs (asked every 100 ms: a node that died fails at once).
  template <class Alive>
  int64_t until_all(const std::vector<std::string>& paths,
                    const std::string& expected, Alive alive,
                    seconds limit = seconds(300)) {
    auto deadline = steady::now() + limit;
    auto next_alive_check = steady::now();
    size_t next = 0;
    char buf[64 * 1024];
    for (;;) {
      while (next < paths.size() && file_holds(paths[next], expected))
        ++next;
      if (next == paths.size())
        return now_ns();
      require(steady::now() < deadline,
              "not every file was written within "
                + std::to_string(limit.count()) + " s (" + std::to_string(next)
                + " of " + std::to_string(paths.size()) + ")");
      if (steady::now() >= next_alive_check) {
        require(alive(), "mcfgd exited");
        next_alive_check = steady::now() + milliseconds(100);
      }
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, 20);
      while (::read(fd_, buf, sizeof(buf)) > 0) {
      }
      // Let a few more renames land before the next pass: a pass per
      // rename would take the bench's core from the node.
      std::this_thread::sleep_for(milliseconds(1));
    }
  }

private:
  int fd_;
};

// -- the floor ------------------------------------------------------------

/// `paths.size()` durable replacements of `bytes` (raw_replace: temp,
/// fsync, rename, the folder's fsync) by `threads` threads taking the
/// paths in order, as mcfgd's io pool takes its writers' jobs. In ns.
int64_t floor_run(const std::string& dir, const std::vector<std::string>& paths,
                  const std::string& bytes, size_t threads) {
  std::atomic<size_t> next{0};
  std::atomic<bool> ok{true};
  auto t0 = now_ns();
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < paths.size();)
        if (!raw_replace(dir, paths[i] + ".tmp", paths[i], bytes, true))
          ok = false;
    });
  for (auto& t : pool)
    t.join();
  require(ok, "floor: " + std::string{std::strerror(errno)});
  return now_ns() - t0;
}

// -- mcfgd, as /proc shows it ---------------------------------------------

/// A number from /proc/PID/status ("Threads:", "VmRSS:" in kB); -1 if none.
int64_t proc_status(pid_t pid, const std::string& field) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, field.size(), field) == 0)
      return std::stoll(line.substr(field.size()));
  return -1;
}

/// utime + stime of the whole process (all its threads), in clock ticks.
int64_t proc_cpu_ticks(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  require(close != std::string::npos, "cannot read /proc/PID/stat");
  std::istringstream words{stat.substr(close + 2)};
  std::string word;
  int64_t utime = 0, stime = 0;
  // Fields 3 (state) to 15 (stime): utime is the 12th after the name.
  for (int field = 3; field <= 15 && (words >> word); ++field) {
    if (field == 14)
      utime = std::stoll(word);
    if (field == 15)
      stime = std::stoll(word);
  }
  return utime + stime;
}

double cpu_seconds(pid_t pid) {
  return static_cast<double>(proc_cpu_ticks(pid))
         / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// The entries of a /proc folder (threads of /proc/PID/task, descriptors of
/// /proc/PID/fd), less "." and "..".
std::vector<std::string> proc_entries(const std::string& dir) {
  std::vector<std::string> out;
  if (auto d = ::opendir(dir.c_str())) {
    while (auto e = ::readdir(d))
      if (e->d_name[0] != '.')
        out.emplace_back(e->d_name);
    ::closedir(d);
  }
  return out;
}

/// Context switches (voluntary and not) of every thread of `pid`: how
/// often the node woke, whoever woke it.
int64_t proc_switches(pid_t pid) {
  int64_t sum = 0;
  auto task = "/proc/" + std::to_string(pid) + "/task/";
  for (auto& tid : proc_entries(task)) {
    std::ifstream in{task + tid + "/status"};
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0
          || line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        sum += std::stoll(line.substr(line.find(':') + 1));
  }
  return sum;
}

/// Raises this process's soft RLIMIT_NOFILE to `need` (mcfgd inherits it),
/// as far as the hard limit allows; the soft limit in force after.
uint64_t raise_nofile(uint64_t need) {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < need) {
    lim.rlim_cur = std::min<rlim_t>(need, lim.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

// -- one N ------------------------------------------------------------------

struct figures {
  size_t n = 0;
  size_t pool = 0;
  uint64_t nofile = 0;
  double locking_s = 0, first_file_s = 0, start_s = 0, start_cpu_s = 0;
  double floor_start_s = 0, tail_cpu_s = 0;
  distribution edit, floor_edit;
  std::vector<double> edit_cpu_s;
  int64_t threads = 0, fds = 0, rss_kib = 0, rss_start_kib = 0;
  double idle_s = 0, idle_cpu_pct = 0;
  int64_t idle_switches = 0;
  distribution status, status_all; // us
  size_t status_bytes = 0, status_all_bytes = 0;
  double stop_s = 0;
};

/// mcfgd on `n` files in `dir` (node.yaml, cluster.yaml, files/, and the
/// floor's own folder beside them).
class scaled_node {
public:
  scaled_node(const std::string& dir, size_t n) : dir_(dir) {
    files_dir_ = dir + "/files";
    floor_dir_ = dir + "/floor";
    std::filesystem::create_directories(files_dir_);
    std::filesystem::create_directories(floor_dir_);
    std::string yaml = "source: cluster.yaml\nfiles:\n";
    for (size_t i = 0; i < n; ++i) {
      yaml += "  - module: memcached_passwords\n    path: files/" + file_name(i)
              + "\n";
      paths_.push_back(files_dir_ + "/" + file_name(i));
      floor_paths_.push_back(floor_dir_ + "/" + file_name(i));
    }
    std::ofstream{dir + "/node.yaml"} << yaml;
    std::ofstream{source()} << source_at(0);
  }

  ~scaled_node() {
    if (mcfgd_) {
      mcfgd_->signal(SIGTERM);
      mcfgd_->wait_exit(seconds(60));
    }
  }

  std::string source() const {
    return dir_ + "/cluster.yaml";
  }
  std::string socket() const {
    return dir_ + "/mcfgd.sock";
  }
  const std::vector<std::string>& paths() const {
    return paths_;
  }
  const std::vector<std::string>& floor_paths() const {
    return floor_paths_;
  }
  const std::string& floor_dir() const {
    return floor_dir_;
  }
  const std::string& files_dir() const {
    return files_dir_;
  }
  pid_t pid() const {
    return mcfgd_->pid();
  }

  void start() {
    mcfgd_ = std::make_unique<test::child_process>(
      std::vector<std::string>{MCFGD, "--config", dir_ + "/node.yaml",
                               "--log-level", "warning"},
      dir_ + "/mcfgd.out", dir_ + "/mcfgd.err");
  }

  bool alive() {
    return mcfgd_ && !mcfgd_->wait_exit(milliseconds(0));
  }

  /// What mcfgd said on stderr (its log; it never logs a password).
  std::string log_tail() const {
    auto err = read_file(dir_ + "/mcfgd.err");
    return err.size() > 2000 ? err.substr(err.size() - 2000) : err;
  }

  /// SIGTERM until it exited (seconds), or a failure after 60 s.
  double stop() {
    auto t0 = now_ns();
    mcfgd_->signal(SIGTERM);
    auto code = mcfgd_->wait_exit_code(seconds(60));
    require(code && *code == 0, "mcfgd did not stop cleanly: " + log_tail());
    mcfgd_.reset();
    return seconds_of(now_ns() - t0);
  }

private:
  std::string dir_, files_dir_, floor_dir_;
  std::vector<std::string> paths_, floor_paths_;
  std::unique_ptr<test::child_process> mcfgd_;
};

/// One GET on the control socket: its time (us) into `d`, its body.
std::string get(const std::string& socket, const std::string& path,
                distribution& d) {
  auto t0 = now_ns();
  auto r = test::http_call(test::http_target{socket, 0}, "GET", path);
  d.add_ns(now_ns() - t0);
  require(r.status == 200,
          "GET " + path + " answered " + std::to_string(r.status));
  return r.body;
}

/// GET /v1/status's summary must count `n` files, none with a problem.
void check_status(const std::string& body, size_t n, const char* which) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  require(!doc.is_discarded() && doc.contains("summary"),
          std::string{which} + ": not a status answer");
  auto& s = doc["summary"];
  require(s.value("files", size_t{0}) == n,
          std::string{which} + ": summary counts "
            + std::to_string(s.value("files", size_t{0})) + " files");
  require(s.value("with_problems", size_t{1}) == 0,
          std::string{which} + ": files with a problem: "
            + std::to_string(s.value("with_problems", size_t{0})));
}

figures run_n(const options& opt, size_t n) {
  figures f;
  f.n = n;
  f.pool = std::min<size_t>(n, 16); // make_io_pool: node.yaml's io_threads
  // A lock descriptor per file, plus the node's own (sockets, inotify, the
  // pool's and CAF's eventfds, logs): generous headroom.
  f.nofile = raise_nofile(n + 1024);
  scratch_dir scratch{opt.dir, "scale"};
  scaled_node node{scratch.path(), n};
  auto bytes = source_auth_text(group, 0);
  folder_waiter waiter{node.files_dir()};
  auto alive = [&node] { return node.alive(); };

  // The floor first, on files not there yet, as mcfgd's first writes are.
  f.floor_start_s = seconds_of(
    floor_run(node.floor_dir(), node.floor_paths(), bytes, f.pool));

  auto t0 = now_ns();
  node.start();
  try {
    // The folder's lock file: node.yaml is read and checked, the control
    // socket is up, and the node takes its files' locks (lock_files).
    auto lock = node.files_dir() + "/mcfgd.lock";
    while (!std::filesystem::exists(lock)) {
      require(now_ns() - t0 < 300 * second_ns, "no lock file within 300 s");
      require(node.alive(), "mcfgd exited");
      std::this_thread::sleep_for(milliseconds(1));
    }
    f.locking_s = seconds_of(now_ns() - t0);
    f.first_file_s = seconds_of(
      waiter.until_all({node.paths().front()}, bytes, alive) - t0);
    f.start_s = seconds_of(waiter.until_all(node.paths(), bytes, alive) - t0);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string{e.what()}
                             + "; mcfgd's log: " + node.log_tail());
  }
  auto landed = now_ns();
  f.start_cpu_s = cpu_seconds(node.pid());
  f.threads = proc_status(node.pid(), "Threads:");
  f.fds = static_cast<int64_t>(
    proc_entries("/proc/" + std::to_string(node.pid()) + "/fd").size());
  f.rss_start_kib = proc_status(node.pid(), "VmRSS:");

  // Every write leaves a timer behind: the writer's deadline for its
  // attempt (node.yaml's retry deadline, 10 s, after the change), which
  // comes due after the write and wakes every writer once. The idle
  // stretch starts after the start's have fired (their CPU: tail_cpu_s),
  // so that it measures a node with nothing pending. A quick run's idle
  // stretch ends before they are due.
  const int64_t deadline = 10; // s
  if (!opt.quick) {
    auto cpu0 = cpu_seconds(node.pid());
    sleep_until_ns(landed + (deadline + 1) * second_ns);
    f.tail_cpu_s = cpu_seconds(node.pid()) - cpu0;
  } else {
    std::this_thread::sleep_for(seconds(1));
  }
  auto ticks0 = proc_cpu_ticks(node.pid());
  auto sw0 = proc_switches(node.pid());
  auto i0 = now_ns();
  std::this_thread::sleep_for(seconds(opt.quick ? 3 : 10));
  auto ticks1 = proc_cpu_ticks(node.pid());
  f.idle_switches = proc_switches(node.pid()) - sw0;
  f.idle_s = seconds_of(now_ns() - i0);
  f.idle_cpu_pct = 100.0 * static_cast<double>(ticks1 - ticks0)
                   / static_cast<double>(::sysconf(_SC_CLK_TCK)) / f.idle_s;
  f.rss_kib = proc_status(node.pid(), "VmRSS:");

  // The control API: the default status, then every file once.
  std::string body;
  for (int i = 0; i < 50; ++i)
    body = get(node.socket(), "/v1/status", f.status);
  check_status(body, n, "GET /v1/status");
  f.status_bytes = body.size();
  auto all = get(node.socket(), "/v1/status?files=all", f.status_all);
  check_status(all, n, "GET /v1/status?files=all");
  f.status_all_bytes = all.size();

  // Edits, each after a floor of as many replacements (the same disk in
  // the same minute) and a rest. The next waits until the last one's
  // deadline timers fired, so that no edit shares the node with them.
  const uint64_t edits = opt.quick ? 1 : 2;
  for (uint64_t v = 1; v <= edits; ++v) {
    f.floor_edit.add_ns(floor_run(node.floor_dir(), node.floor_paths(),
                                  source_auth_text(group, v), f.pool));
    std::this_thread::sleep_for(milliseconds(500));
    auto cpu0 = cpu_seconds(node.pid());
    auto e0 = now_ns();
    save_by_rename(node.source(), source_at(v));
    auto done = waiter.until_all(node.paths(), source_auth_text(group, v),
                                 alive);
    f.edit.add_ns(done - e0);
    f.edit_cpu_s.push_back(cpu_seconds(node.pid()) - cpu0);
    if (v < edits)
      sleep_until_ns(done + (deadline + 1) * second_ns);
  }
  // Every file, once more, after the timing.
  for (auto& p : node.paths())
    require(file_holds(p, source_auth_text(group, edits)),
            p + " does not hold the last edit");

  f.stop_s = node.stop();
  return f;
}

void print(figures f) {
  // Distributions hold microseconds; these figures are seconds.
  auto edit = f.edit.p50() / 1e6, floor_edit = f.floor_edit.p50() / 1e6;
  distribution cpu{f.edit_cpu_s};
  json_line{"scale_" + std::to_string(f.n)}
    .add("files", f.n)
    .add("start_s", f.start_s, 3)
    .add("floor_start_s", f.floor_start_s, 3)
    .add("start_ratio", f.start_s / f.floor_start_s, 2)
    .add("start_cpu_s", f.start_cpu_s, 2)
    .add("locking_s", f.locking_s, 3)
    .add("first_file_s", f.first_file_s, 3)
    .add("tail_cpu_s", f.tail_cpu_s, 2)
    .add("edit_s", edit, 3)
    .add("floor_edit_s", floor_edit, 3)
    .add("edit_ratio", edit / floor_edit, 2)
    .add("edit_max_s", f.edit.pct(1.0) / 1e6, 3)
    .add("edit_cpu_s", cpu.p50(), 2)
    .add("edits", f.edit.us.size())
    .add("io_threads", f.pool)
    .add("threads", f.threads)
    .add("fds", f.fds)
    .add("nofile_limit", f.nofile)
    .add("idle_cpu_pct", f.idle_cpu_pct, 2)
    .add("idle_s", f.idle_s, 1)
    .add("idle_switches", f.idle_switches)
    .add("rss_start_kib", f.rss_start_kib)
    .add("rss_kib", f.rss_kib)
    .add("rss_per_file_bytes",
         static_cast<double>(f.rss_kib) * 1024.0 / static_cast<double>(f.n), 0)
    .add("status_p50_ms", ms_of(f.status.p50()), 2)
    .add("status_p99_ms", ms_of(f.status.p99()), 2)
    .add("status_bytes", f.status_bytes)
    .add("status_all_ms", ms_of(f.status_all.p50()), 2)
    .add("status_all_bytes", f.status_all_bytes)
    .add("stop_s", f.stop_s, 3)
    .print();
}

} // namespace

void scale_group(const options& opt) {
  try {
    for (size_t n : {size_t{1'000}, size_t{10'000}}) {
      if (opt.quick && n > 1'000)
        break;
      print(run_n(opt, n));
    }
  } catch (const std::exception& e) {
    fail(std::string{"scale: "} + e.what());
  }
}

} // namespace mcfg::bench
