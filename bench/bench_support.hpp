#pragma once
// What the benchmark's scenario groups share: a clock, percentiles, JSON
// lines, resident memory, the raw system-call floor, the callback modules the
// benchmarked writers drive, the source of users the node groups follow and
// the file it renders to, and the steps every group takes (an actor system,
// a scratch folder, a writer spawned, asked, stopped, a file compared).
// Real time lives here only: library code keeps to the actor clock.
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
/// Brackets the measured part of a scenario for
/// `valgrind --tool=callgrind --instr-atstart=no`; no-ops otherwise.
#define MCFG_PROFILE_START() CALLGRIND_START_INSTRUMENTATION
#define MCFG_PROFILE_STOP() CALLGRIND_STOP_INSTRUMENTATION
#else
#define MCFG_PROFILE_START() (void)0
#define MCFG_PROFILE_STOP() (void)0
#endif

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "bench/scenarios.hpp"
#include "memcached_cfg/actors/memcached_cfg.hpp"
#include "memcached_cfg/actors/writer_module.hpp"
#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/messages/message_types.hpp"
#include "memcached_cfg/supervision/supervisor.hpp"

namespace mcfg::bench {

// -- time ---------------------------------------------------------------------

using steady = std::chrono::steady_clock;

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           steady::now().time_since_epoch())
    .count();
}

/// Sorted samples (microseconds) and their percentiles.
struct distribution {
  std::vector<double> us;

  void add_ns(int64_t ns) {
    us.push_back(static_cast<double>(ns) / 1000.0);
  }
  /// The value at or below which `q` of the samples lie (nearest rank).
  double pct(double q) {
    if (us.empty())
      return 0;
    std::sort(us.begin(), us.end());
    auto rank = static_cast<size_t>(
      std::ceil(q * static_cast<double>(us.size())));
    return us[std::clamp<size_t>(rank, 1, us.size()) - 1];
  }
  double p50() {
    return pct(0.50);
  }
  double p99() {
    return pct(0.99);
  }
  double mean() const {
    double sum = 0;
    for (auto x : us)
      sum += x;
    return us.empty() ? 0 : sum / static_cast<double>(us.size());
  }
};

// -- output -------------------------------------------------------------------

/// One JSON object on one line; fields in insertion order.
class json_line {
public:
  explicit json_line(const std::string& scenario) {
    add("scenario", scenario);
  }
  json_line& add(const std::string& key, const std::string& value) {
    fields_.emplace_back(key, quote(value));
    return *this;
  }
  json_line& add(const std::string& key, const char* value) {
    return add(key, std::string{value});
  }
  json_line& add(const std::string& key, bool value) {
    fields_.emplace_back(key, value ? "true" : "false");
    return *this;
  }
  json_line& add(const std::string& key, double value, int decimals = 1) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
    fields_.emplace_back(key, buf);
    return *this;
  }
  template <class Int, class = std::enable_if_t<
                         std::is_integral_v<Int> && !std::is_same_v<Int, bool>>>
  json_line& add(const std::string& key, Int value) {
    fields_.emplace_back(key, std::to_string(value));
    return *this;
  }
  std::string str() const {
    std::string out = "{";
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (i > 0)
        out += ",";
      out += quote(fields_[i].first) + ":" + fields_[i].second;
    }
    return out + "}";
  }
  void print() const {
    std::printf("%s\n", str().c_str());
    std::fflush(stdout);
  }

private:
  static std::string quote(const std::string& x) {
    std::string out = "\"";
    for (char c : x) {
      if (c == '"' || c == '\\')
        out += '\\';
      if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
        continue;
      }
      out += c;
    }
    return out + "\"";
  }
  std::vector<std::pair<std::string, std::string>> fields_;
};

// -- memory -------------------------------------------------------------------

/// Resident set size in bytes, from /proc/self/statm.
inline int64_t resident_bytes() {
  long pages_total = 0, pages_resident = 0;
  if (auto f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2)
      pages_resident = 0;
    std::fclose(f);
  }
  return static_cast<int64_t>(pages_resident) * sysconf(_SC_PAGESIZE);
}

// -- the floor: the system calls a durable replacement cannot do without -----

/// open temp (O_NOFOLLOW), write, fsync, close, rename, fsync the directory:
/// the sequence the writer must make, with nothing else around it.
inline bool raw_replace(const std::string& dir, const std::string& tmp,
                        const std::string& path, const std::string& bytes,
                        bool durable) {
  int fd = ::open(tmp.c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return false;
  bool ok = ::write(fd, bytes.data(), bytes.size())
            == static_cast<ssize_t>(bytes.size());
  if (durable)
    ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  ok = ::rename(tmp.c_str(), path.c_str()) == 0 && ok;
  if (durable) {
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
      return false;
    ok = ::fsync(dfd) == 0 && ok;
    ok = ::close(dfd) == 0 && ok;
  }
  return ok;
}

/// Times one raw_replace of `dir`/file into `into`.
inline void time_floor(distribution& into, const std::string& dir,
                       const std::string& bytes, bool durable) {
  auto t0 = now_ns();
  if (!raw_replace(dir, dir + "/file.tmp", dir + "/file", bytes, durable))
    fail("floor: " + std::string{std::strerror(errno)});
  into.add_ns(now_ns() - t0);
}

// -- what the benchmarked writers report --------------------------------------

/// Shared between a writer's module and refresh hook (on the writer's thread)
/// and the scenario (on the main thread).
struct probe {
  /// The state sequence number the module last rendered.
  std::atomic<uint64_t> rendered{0};
  /// The sequence number the last refresh saw rendered, i.e. the state the
  /// file holds.
  std::atomic<uint64_t> refreshed_seq{0};
  /// When the last refresh ran (now_ns).
  std::atomic<int64_t> refresh_ns{0};
  /// How many refreshes ran (one per file replaced); published last.
  std::atomic<uint64_t> refreshes{0};
  /// When set, the module stamps each change it applies and each
  /// incarnation it builds (two clock reads the hot path does not pay for
  /// otherwise): where a latency splits into scheduling and writing.
  bool stamp = false;
  std::atomic<int64_t> handled_ns{0};
  std::atomic<int64_t> produced_ns{0};
  std::atomic<int64_t> created_ns{0};

  /// The writer's refresh hook.
  void on_refresh() {
    refreshed_seq.store(rendered.load(std::memory_order_relaxed),
                        std::memory_order_relaxed);
    refresh_ns.store(now_ns(), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> guard{mtx_};
      refreshes.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
  }

  /// Waits until more than `seen` refreshes ran; false after `limit`. The
  /// waiting thread sleeps: a spinning one would take a core from the
  /// writer on a small machine.
  bool wait_beyond(uint64_t seen,
                   std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_for(guard, limit, [&] {
      return refreshes.load(std::memory_order_acquire) > seen;
    });
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
};

// -- modules ------------------------------------------------------------------

/// 64 slots of 64 bytes: the module renders a 4 KiB file whatever its
/// state. Keys `b/<n>` go to slot n % 64; a change is new state when the
/// value differs. Every other key is filtered out. Each state change bumps a
/// sequence number, which produce() publishes to the probe, so the scenario
/// knows which state a refresh put on disk.
class slots_module final : public writer_module {
public:
  static constexpr size_t slots = 64;
  static constexpr size_t line = 64;

  explicit slots_module(probe* p) : probe_(p) {
    if (probe_ != nullptr && probe_->stamp)
      probe_->created_ns.store(now_ns(), std::memory_order_relaxed);
  }

  void init(const snapshot& source) override {
    for (auto& s : slots_)
      s = {};
    for (auto& [key, value] : source)
      if (filter_event(key))
        apply(key, value);
    seq_ = 0;
  }

  bool filter_event(const std::string& key) const override {
    return key.size() > 2 && key[0] == 'b' && key[1] == '/';
  }

  bool handle_event(const config_change& change) override {
    if (change.removed)
      return false;
    if (!apply(change.key, change.value))
      return false;
    ++seq_;
    if (probe_ != nullptr && probe_->stamp)
      probe_->handled_ns.store(now_ns(), std::memory_order_relaxed);
    return true;
  }

  rendering produce() const override {
    if (probe_ != nullptr) {
      probe_->rendered.store(seq_, std::memory_order_relaxed);
      if (probe_->stamp)
        probe_->produced_ns.store(now_ns(), std::memory_order_relaxed);
    }
    std::string out;
    out.reserve(slots * line);
    for (auto& s : slots_) {
      auto start = out.size();
      out += s.key;
      out += '=';
      out += s.value;
      out.resize(start + line - 1, ' ');
      out += '\n';
    }
    return rendering::content(std::move(out));
  }

  std::map<std::string, std::string> format_status() const override {
    return {{"seq", std::to_string(seq_)}};
  }

  /// The slot a key lands in.
  static size_t slot_of(const std::string& key) {
    size_t n = 0;
    std::from_chars(key.data() + 2, key.data() + key.size(), n);
    return n % slots;
  }

private:
  struct slot {
    std::string key;
    std::string value;
  };

  /// Sets the key's slot; false when it already holds exactly this. No
  /// allocation unless something changes (a module should be cheap, so the
  /// figures show the writer and CAF, not the module).
  bool apply(const std::string& key, const config_value& value) {
    auto str = caf::get_if<std::string>(&value);
    if (str == nullptr)
      return false;
    auto& s = slots_[slot_of(key)];
    // Keep each line within its 64 bytes.
    std::string_view k{key};
    k = k.substr(0, line - 2);
    std::string_view v{*str};
    v = v.substr(0, line - 2 - k.size());
    if (s.key == k && s.value == v)
      return false;
    s.key.assign(k.data(), k.size());
    s.value.assign(v.data(), v.size());
    return true;
  }

  probe* probe_;
  std::array<slot, slots> slots_;
  uint64_t seq_ = 0;
};

/// An idle writer's module for the memory scenario: one small integer.
class tiny_module final : public writer_module {
public:
  void init(const snapshot&) override {
  }
  bool filter_event(const std::string& key) const override {
    return key == "t";
  }
  bool handle_event(const config_change& change) override {
    auto x = caf::get_if<int64_t>(&change.value);
    if (x == nullptr || *x == value_)
      return false;
    value_ = *x;
    return true;
  }
  rendering produce() const override {
    return rendering::content(std::to_string(value_) + "\n");
  }
  std::map<std::string, std::string> format_status() const override {
    return {};
  }

private:
  int64_t value_ = 0;
};

// -- a source of users and the file it renders to -----------------------------

/// How many users the scale and io_stall groups' sources hold: u0 ... u7.
constexpr size_t source_users = 8;

/// User u<i>'s password at edit `edit` of group `group`'s source. Only u3's
/// changes with the edit: issue 23 times the edit of one user. The group's
/// name in it tells which group wrote a file left behind.
inline std::string source_password(const std::string& group, size_t i,
                                   uint64_t edit) {
  return "Pw-" + group + "-u" + std::to_string(i) + "-e"
         + std::to_string(i == 3 ? edit : 0);
}

/// What memcached_passwords renders for that source at edit `edit`: one
/// "user:password" line a user, in name order (u0 ... u7 sort as they are
/// numbered).
inline std::string source_auth_text(const std::string& group, uint64_t edit) {
  std::string out;
  for (size_t i = 0; i < source_users; ++i)
    out += "u" + std::to_string(i) + ":" + source_password(group, i, edit)
           + "\n";
  return out;
}

// -- the steps every group takes ----------------------------------------------

/// An actor system with the project's message types, as an embedder makes it
/// (default scheduler settings unless the run sets the worker count).
struct bench_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  explicit bench_system(const options& opt) {
    mcfg::add_message_types(cfg);
    sup::add_message_types(cfg);
    if (opt.workers > 0)
      cfg.set("scheduler.max-threads", opt.workers);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

/// A fresh folder of its own under the run's directory, removed at exit.
class scratch_dir {
public:
  scratch_dir(const std::string& parent, const std::string& name) {
    std::filesystem::create_directories(parent);
    auto templ = parent + "/" + name + "-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    check(::mkdtemp(buf.data()) != nullptr, "mkdtemp " + templ);
    path_ = std::filesystem::absolute(buf.data()).string();
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const {
    return path_;
  }
  std::string sub(const std::string& name) const {
    auto p = path_ + "/" + name;
    std::filesystem::create_directories(p);
    return p;
  }

private:
  std::string path_;
};

/// CPU time (user + system) of the whole process so far, in nanoseconds.
inline int64_t cpu_ns() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& x) {
    return int64_t{x.tv_sec} * 1'000'000'000 + int64_t{x.tv_usec} * 1'000;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

/// The keys of a full slots_module: 64 lines of 64 bytes.
inline snapshot full_snapshot() {
  snapshot out;
  for (size_t i = 0; i < slots_module::slots; ++i)
    out.emplace("b/" + std::to_string(i),
                config_value{"initial-value-" + std::to_string(i)});
  return out;
}

/// The 4 KiB the floor writes: what a slots_module renders.
inline std::string floor_bytes() {
  auto bytes = slots_module{nullptr}.produce().text();
  bytes.resize(4096, 'x');
  return bytes;
}

/// A 4 KiB writer over slots_module reporting to `p`.
inline writer_spec slots_spec(const std::string& path, probe* p, bool durable) {
  writer_spec spec;
  spec.settings.path = path;
  spec.settings.durable = durable;
  spec.make_module = [p] { return std::make_unique<slots_module>(p); };
  spec.read_snapshot = [] { return versioned_snapshot{0, full_snapshot()}; };
  spec.refresh = [p](uint64_t) { p->on_refresh(); };
  return spec;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

/// Whether `path` holds exactly `expected` (under 1 KiB): one open and one
/// read, no allocation, as the groups that poll thousands of files need.
inline bool file_holds(const std::string& path, const std::string& expected) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  char buf[1024];
  auto want = std::min(expected.size() + 1, sizeof(buf));
  auto n = ::read(fd, buf, want);
  ::close(fd);
  return n == static_cast<ssize_t>(expected.size())
         && std::memcmp(buf, expected.data(), expected.size()) == 0;
}

inline writer_status status_of(caf::actor_system& sys,
                               const memcached_cfg_actor& writer) {
  caf::scoped_actor self{sys};
  writer_status out;
  self->request(writer, caf::infinite, status_atom::value)
    .receive([&](writer_status& st) { out = std::move(st); },
             [&](caf::error& err) { fail("status: " + sys.render(err)); });
  return out;
}

/// Returns once `writer` (or a bare one) answered a sync: once every message
/// sent to it before went through.
inline void sync_with(caf::scoped_actor& self,
                      const memcached_cfg_actor& writer) {
  self->request(writer, caf::infinite, sync_atom::value)
    .receive([](caf::ok_atom) {},
             [&](caf::error& err) {
               fail("sync: " + self->system().render(err));
             });
}

/// Shuts `who` (a writer or a supervisor) down and waits until it is gone.
template <class Handle>
void stop(caf::actor_system& sys, const Handle& who) {
  caf::scoped_actor self{sys};
  self->monitor(who);
  self->send_exit(who, caf::exit_reason::user_shutdown);
  self->receive([](caf::down_msg&) {});
}

} // namespace mcfg::bench
