// The propagation group: the real node (mcfgd, as a process of its own) with
// the real file backend. A source is saved — renamed into place, or written
// in place — and timed until the auth file the node keeps holds it, against
// the durable write floor measured in between.
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/wait.h>

#include "bench/bench_support.hpp"

extern char** environ;

namespace mcfg::bench {
namespace {

/// mcfgd on a node.yaml, stopped with SIGTERM at the end.
class node_process {
public:
  explicit node_process(const std::string& node_yaml) {
    std::vector<std::string> args = {MCFGD, "--config", node_yaml,
                                     "--log-level", "error"};
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    check(::posix_spawn(&pid_, MCFGD, nullptr, nullptr, argv.data(), environ)
            == 0,
          "cannot start " MCFGD);
  }
  ~node_process() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

private:
  pid_t pid_ = -1;
};

/// Waits, woken by inotify on its folder, until `path` holds `expected`.
class file_waiter {
public:
  explicit file_waiter(const std::string& dir)
    : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    check(fd_ >= 0
            && ::inotify_add_watch(fd_, dir.c_str(),
                                   IN_MOVED_TO | IN_CLOSE_WRITE)
                 >= 0,
          "inotify on " + dir);
  }
  ~file_waiter() {
    ::close(fd_);
  }
  void until(const std::string& path, const std::string& expected) {
    auto deadline = steady::now() + std::chrono::seconds(10);
    char buf[4096];
    while (read_file(path) != expected) {
      check(steady::now() < deadline, "the node did not write " + path);
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, 100);
      while (::read(fd_, buf, sizeof(buf)) > 0) {
      }
    }
  }

private:
  int fd_;
};

std::string source_at(uint64_t n) {
  return "users:\n  alice: {password: a-" + std::to_string(n)
         + "}\n  bob: {password: b-" + std::to_string(n) + "}\n";
}

std::string auth_at(uint64_t n) {
  return "alice:a-" + std::to_string(n) + "\nbob:b-" + std::to_string(n) + "\n";
}

void write_all(int fd, const std::string& text) {
  check(::write(fd, text.data(), text.size())
          == static_cast<ssize_t>(text.size()),
        "write: " + std::string{std::strerror(errno)});
  ::close(fd);
}

/// As an editor that saves atomically: a new file renamed over the source.
void save_by_rename(const std::string& path, const std::string& text) {
  auto tmp = path + ".new";
  write_all(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600),
            text);
  check(::rename(tmp.c_str(), path.c_str()) == 0, "rename " + tmp);
}

/// As `cat > file` or an editor that saves in place: truncate and write.
void save_in_place(const std::string& path, const std::string& text) {
  write_all(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC), text);
}

} // namespace

void propagation_group(const options& opt) {
  scratch_dir scratch{opt.dir, "propagation"};
  auto floor_dir = scratch.sub("floor");
  auto node_dir = scratch.sub("node");
  auto run_dir = scratch.sub("node/run");
  auto source = node_dir + "/cluster.yaml";
  auto auth = run_dir + "/memcached.auth";
  std::ofstream{node_dir + "/node.yaml"}
    << "source: cluster.yaml\nfiles:\n  - module: memcached_passwords\n"
       "    path: run/memcached.auth\n";
  uint64_t version = 1;
  std::ofstream{source} << source_at(version);
  node_process node{node_dir + "/node.yaml"};
  file_waiter waiter{run_dir};
  waiter.until(auth, auth_at(version));
  auto bytes = floor_bytes();

  using save_fn = void (*)(const std::string&, const std::string&);
  struct mode {
    const char* scenario;
    save_fn save;
    distribution d;
  };
  mode modes[] = {{"propagation_rename", save_by_rename, {}},
                  {"propagation_in_place", save_in_place, {}}};
  distribution floor;
  const size_t block = 5;
  const size_t rounds = (opt.quick ? 20 : 200) / block;
  for (size_t r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < block; ++i)
      time_floor(floor, floor_dir, bytes, true);
    for (auto& m : modes) {
      for (size_t i = 0; i < block; ++i) {
        ++version;
        auto expected = auth_at(version);
        auto t0 = now_ns();
        m.save(source, source_at(version));
        waiter.until(auth, expected);
        m.d.add_ns(now_ns() - t0);
      }
    }
  }
  auto f50 = floor.p50();
  for (auto& m : modes)
    json_line{m.scenario}
      .add("p50_us", m.d.p50())
      .add("p99_us", m.d.p99())
      .add("ratio_p50_to_floor", m.d.p50() / f50, 3)
      .add("ratio_p10_to_floor", m.d.pct(0.10) / floor.pct(0.10), 3)
      .add("floor_p50_us", f50)
      .add("floor_p99_us", floor.p99())
      .add("samples", m.d.us.size())
      .print();
}

} // namespace mcfg::bench
