// mcfg_bench: how close the memcached_cfg writer gets to the file system's
// own limit, as ratios measured in one run (README.md, "Performance").
//
//   mcfg_bench [--dir DIR] [--json FILE] [--quick]       every scenario
//   mcfg_bench --scenario GROUP [--dir DIR] [--quick]    one group, JSON only
//
// The driver runs each group in a fresh process of its own (so that the
// memory figures start from a clean heap and no group inherits another's
// threads or garbage), echoes the JSON lines, and prints a table.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <optional>

#include <malloc.h>
#include <sys/resource.h>
#include <sys/statfs.h>

#include <caf/actor_registry.hpp>
#include <caf/actor_storage.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <nlohmann/json.hpp>

#include "actors/memcached_cfg.hpp"
#include "bench/bench_support.hpp"
#include "messages/log.hpp"
#include "messages/message_types.hpp"
#include "supervision/supervisor.hpp"

namespace fs = std::filesystem;

namespace mcfg::bench {
namespace {

struct options {
  std::string dir;
  std::string scenario;
  std::string json_path;
  bool quick = false;
  size_t burst_events = 100'000;
  /// CAF scheduler threads; 0 keeps CAF's default (max(4, cores)).
  size_t workers = 0;
};

/// Set once from the command line; every actor system in a group uses it.
size_t g_workers = 0;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "mcfg_bench: %s\n", what.c_str());
  std::exit(1);
}

void check(bool ok, const std::string& what) {
  if (!ok)
    fail(what);
}

/// An actor system with the project's message types, as an embedder makes it
/// (default scheduler settings).
struct bench_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  bench_system() {
    mcfg::add_message_types(cfg);
    sup::add_message_types(cfg);
    if (g_workers > 0)
      cfg.set("scheduler.max-threads", g_workers);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

/// A fresh folder of its own under the run's directory, removed at exit.
class scratch_dir {
public:
  scratch_dir(const std::string& parent, const std::string& name) {
    fs::create_directories(parent);
    auto templ = parent + "/" + name + "-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    check(::mkdtemp(buf.data()) != nullptr, "mkdtemp " + templ);
    path_ = fs::absolute(buf.data()).string();
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const {
    return path_;
  }
  std::string sub(const std::string& name) const {
    auto p = path_ + "/" + name;
    fs::create_directories(p);
    return p;
  }

private:
  std::string path_;
};

/// CPU time (user + system) of the whole process so far, in nanoseconds.
int64_t cpu_ns() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& x) {
    return int64_t{x.tv_sec} * 1'000'000'000 + int64_t{x.tv_usec} * 1'000;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

/// The keys of a full slots_module: 64 lines of 64 bytes.
snapshot full_snapshot() {
  snapshot out;
  for (size_t i = 0; i < slots_module::slots; ++i)
    out.emplace("b/" + std::to_string(i),
                config_value{"initial-value-" + std::to_string(i)});
  return out;
}

/// A 4 KiB writer over slots_module reporting to `p`.
writer_spec slots_spec(const std::string& path, probe* p, bool durable) {
  writer_spec spec;
  spec.settings.path = path;
  spec.settings.durable = durable;
  spec.make_module = [p] { return std::make_unique<slots_module>(p); };
  spec.read_snapshot = [] { return full_snapshot(); };
  spec.refresh = [p] { p->on_refresh(); };
  return spec;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

writer_status status_of(caf::actor_system& sys,
                        const memcached_cfg_actor& writer) {
  caf::scoped_actor self{sys};
  writer_status out;
  self->request(writer, caf::infinite, status_atom::value)
    .receive([&](writer_status& st) { out = std::move(st); },
             [&](caf::error& err) { fail("status: " + sys.render(err)); });
  return out;
}

void stop(caf::actor_system& sys, const memcached_cfg_actor& writer) {
  caf::scoped_actor self{sys};
  self->monitor(writer);
  self->send_exit(writer, caf::exit_reason::user_shutdown);
  self->receive([](caf::down_msg&) {});
}

// -- machine ------------------------------------------------------------------

std::string cpu_model() {
  std::ifstream in{"/proc/cpuinfo"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto pos = line.find(':');
      return pos == std::string::npos ? line : line.substr(pos + 2);
    }
  return "unknown";
}

std::string fs_type(const std::string& dir) {
  struct statfs st;
  if (::statfs(dir.c_str(), &st) != 0)
    return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794C7630:
      return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "0x%lx",
                    static_cast<unsigned long>(st.f_type));
      return buf;
    }
  }
}

/// The 1-minute load average: how busy the (shared) machine was.
double load_average() {
  double x = 0;
  if (auto f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &x) != 1)
      x = 0;
    std::fclose(f);
  }
  return x;
}

void machine(const options& opt) {
  bench_system bs;
  json_line{"machine"}
    .add("nproc", std::thread::hardware_concurrency())
    .add("cpu", cpu_model())
    .add("fs", fs_type(opt.dir))
    .add("dir", opt.dir)
    .add("caf_version", std::to_string(CAF_MAJOR_VERSION) + "."
                          + std::to_string(CAF_MINOR_VERSION) + "."
                          + std::to_string(CAF_PATCH_VERSION))
    .add("caf_workers", bs.sys->scheduler().num_workers())
#ifdef NDEBUG
    .add("build", "release")
#else
    .add("build", "debug")
#endif
    .add("quick", opt.quick)
    .add("loadavg_1m_at_start", load_average(), 2)
    .print();
}

// -- latency: floor, file port, writer; durable on and off --------------------

/// Sends a change to the writer from inside the actor system, as the node's
/// config_store does, stamping the time just before the send.
caf::behavior change_sender(caf::event_based_actor* self,
                            memcached_cfg_actor writer,
                            std::atomic<int64_t>* sent_ns) {
  return {
    [=](const std::string& key, const std::string& value) {
      sent_ns->store(now_ns(), std::memory_order_relaxed);
      self->send(writer, change_atom::value,
                 config_change{key, config_value{value}});
    },
  };
}

void latency_group(const options& opt, bool durable) {
  const std::string suffix = durable ? "" : "_nofsync";
  scratch_dir scratch{opt.dir, "latency"};
  auto floor_dir = scratch.sub("floor");
  auto floor_b_dir = scratch.sub("floorb");
  auto port_dir = scratch.sub("port");
  auto writer_dir = scratch.sub("writer");
  // The same 4 KiB the writer renders.
  auto bytes = slots_module{nullptr}.produce().text();
  bytes.resize(4096, 'x');

  bench_system bs;
  auto& sys = *bs.sys;
  probe p;
  p.stamp = true;
  auto writer = spawn_memcached_cfg(sys, slots_spec(writer_dir + "/file", &p,
                                                    durable));
  check(p.wait_beyond(0), "the writer's initial write did not complete");
  std::atomic<int64_t> sent_ns{0};
  auto sender = sys.spawn(change_sender, writer, &sent_ns);
  auto port = make_posix_file_port();

  distribution floor, floor_b, port_d, internal, external, dispatch, hop,
    write;
  // The five are interleaved in small blocks, in a rotating order, so that
  // the disk's and the machine's drift (other work on a shared machine)
  // weighs on each alike and their ratios hold. The floor is measured twice
  // (in two folders of the same depth): how far apart the two land is the
  // noise of a ratio in this run.
  const size_t per_kind = opt.quick ? 40 : (durable ? 1000 : 3000);
  const size_t block = 5;
  uint64_t n = 0;
  auto next_change = [&] {
    ++n;
    return std::make_pair("b/" + std::to_string(n % slots_module::slots),
                          "v" + std::to_string(n));
  };
  std::function<void()> kinds[] = {
    [&] {
      auto t0 = now_ns();
      check(raw_replace(floor_dir, floor_dir + "/file.tmp",
                        floor_dir + "/file", bytes, durable),
            "floor: " + std::string{std::strerror(errno)});
      floor.add_ns(now_ns() - t0);
    },
    [&] {
      auto t0 = now_ns();
      check(raw_replace(floor_b_dir, floor_b_dir + "/file.tmp",
                        floor_b_dir + "/file", bytes, durable),
            "floor: " + std::string{std::strerror(errno)});
      floor_b.add_ns(now_ns() - t0);
    },
    [&] {
      // What replace_file asks of the file port, called directly.
      auto t0 = now_ns();
      bool ok = !port->make_directories(port_dir)
                && !port->write_file(port_dir + "/file.tmp", bytes, 0600,
                                     durable)
                && !port->rename(port_dir + "/file.tmp", port_dir + "/file")
                && (!durable || !port->sync_directory(port_dir));
      port_d.add_ns(now_ns() - t0);
      check(ok, "port write failed");
    },
    [&] {
      auto seen = p.refreshes.load(std::memory_order_acquire);
      auto [key, value] = next_change();
      MCFG_PROFILE_START();
      caf::anon_send(sender, key, value);
      check(p.wait_beyond(seen), "no refresh after a change");
      MCFG_PROFILE_STOP();
      internal.add_ns(p.refresh_ns.load() - sent_ns.load());
      dispatch.add_ns(p.handled_ns.load() - sent_ns.load());
      hop.add_ns(p.produced_ns.load() - p.handled_ns.load());
      write.add_ns(p.refresh_ns.load() - p.produced_ns.load());
    },
    [&] {
      auto seen = p.refreshes.load(std::memory_order_acquire);
      auto [key, value] = next_change();
      auto t0 = now_ns();
      caf::anon_send(writer, change_atom::value,
                     config_change{key, config_value{value}});
      check(p.wait_beyond(seen), "no refresh after a change");
      external.add_ns(p.refresh_ns.load() - t0);
    },
  };
  constexpr size_t nkinds = std::size(kinds);
  for (size_t round = 0; round < per_kind / block; ++round)
    for (size_t k = 0; k < nkinds; ++k)
      for (size_t i = 0; i < block; ++i)
        kinds[(round + k) % nkinds]();
  // The file holds the last change.
  auto content = read_file(writer_dir + "/file");
  check(content.size() == 4096, "the writer's file is not 4 KiB");
  check(content.find("=v" + std::to_string(n) + " ") != std::string::npos,
        "the writer's file misses the last change");

  auto f50 = floor.p50();
  auto noise = floor_b.p50() / f50;
  json_line{"floor" + suffix}
    .add("durable", durable)
    .add("p50_us", f50)
    .add("p99_us", floor.p99())
    .add("mean_us", floor.mean())
    .add("samples", floor.us.size())
    .add("p10_us", floor.pct(0.10))
    .add("again_p50_us", floor_b.p50())
    .add("again_ratio_p50", noise, 3)
    .add("again_ratio_p10", floor_b.pct(0.10) / floor.pct(0.10), 3)
    .print();
  json_line{"port" + suffix}
    .add("durable", durable)
    .add("p50_us", port_d.p50())
    .add("p99_us", port_d.p99())
    .add("ratio_p50_to_floor", port_d.p50() / f50, 3)
    .add("samples", port_d.us.size())
    .print();
  json_line{durable ? "latency" : "durable"}
    .add("durable", durable)
    .add("p50_us", internal.p50())
    .add("p99_us", internal.p99())
    .add("ratio_p50_to_floor", internal.p50() / f50, 3)
    .add("ratio_p10_to_floor", internal.pct(0.10) / floor.pct(0.10), 3)
    .add("floor_p50_us", f50)
    .add("floor_again_ratio_p50", noise, 3)
    .add("port_p50_us", port_d.p50())
    .add("send_to_handle_p50_us", dispatch.p50())
    .add("handle_to_produce_p50_us", hop.p50())
    .add("produce_to_refresh_p50_us", write.p50())
    .add("external_p50_us", external.p50())
    .add("external_p99_us", external.p99())
    .add("external_ratio_p50_to_floor", external.p50() / f50, 3)
    .add("samples", internal.us.size())
    .add("file_bytes", content.size())
    .print();
  stop(sys, writer);
  caf::anon_send_exit(sender, caf::exit_reason::user_shutdown);
}

// -- burst: 100,000 distinct changes as fast as possible ----------------------

void burst_group(const options& opt) {
  scratch_dir scratch{opt.dir, "burst"};
  const size_t events = opt.quick ? opt.burst_events / 10 : opt.burst_events;
  const size_t reps = opt.quick ? 1 : 9;
  struct rep_result {
    double settle_ms, send_ms;
    uint64_t writes;
    double cpu_ns_per_event;
  };
  std::vector<rep_result> results;
  bench_system bs;
  auto& sys = *bs.sys;
  uint64_t unique = 0;
  for (size_t rep = 0; rep < reps; ++rep) {
    auto dir = scratch.sub("r" + std::to_string(rep));
    probe p;
    auto writer = spawn_memcached_cfg(sys, slots_spec(dir + "/file", &p, true));
    check(p.wait_beyond(0), "the writer's initial write did not complete");
    // Distinct keys, distinct values, as distinct user edits are; the
    // expected file is what a module fed the same changes renders.
    std::vector<config_change> changes;
    changes.reserve(events);
    slots_module expected{nullptr};
    expected.init(full_snapshot());
    for (size_t i = 0; i < events; ++i) {
      ++unique;
      changes.push_back(config_change{"b/" + std::to_string(unique),
                                      config_value{"v" + std::to_string(unique)
                                                   + "-" + std::to_string(rep)}});
      check(expected.handle_event(changes.back()), "a change changed nothing");
    }
    auto expected_text = expected.produce().text();
    auto seen = p.refreshes.load(std::memory_order_acquire);
    MCFG_PROFILE_START();
    auto cpu0 = cpu_ns();
    auto t0 = now_ns();
    for (auto& change : changes)
      caf::anon_send(writer, change_atom::value, std::move(change));
    auto t_sent = now_ns();
    // Until the file holds the state after the last change.
    while (p.refreshed_seq.load(std::memory_order_relaxed) < events) {
      auto before = p.refreshes.load(std::memory_order_acquire);
      if (p.refreshed_seq.load(std::memory_order_relaxed) >= events)
        break;
      check(p.wait_beyond(before, std::chrono::seconds(60)),
            "burst did not settle");
    }
    MCFG_PROFILE_STOP();
    auto cpu1 = cpu_ns();
    auto t_settled = p.refresh_ns.load();
    auto writes = p.refreshes.load() - seen;
    check(read_file(dir + "/file") == expected_text,
          "after the burst the file does not hold the last state");
    auto st = status_of(sys, writer);
    check(st.changes == events, "the writer saw " + std::to_string(st.changes)
                                  + " changes, not " + std::to_string(events));
    results.push_back({static_cast<double>(t_settled - t0) / 1e6,
                       static_cast<double>(t_sent - t0) / 1e6, writes,
                       static_cast<double>(cpu1 - cpu0)
                         / static_cast<double>(events)});
    stop(sys, writer);
  }
  auto median = [&](auto field) {
    std::vector<double> xs;
    for (auto& r : results)
      xs.push_back(field(r));
    std::sort(xs.begin(), xs.end());
    return xs[xs.size() / 2];
  };
  auto settle = median([](auto& r) { return r.settle_ms; });
  auto sent = median([](auto& r) { return r.send_ms; });
  auto writes = median([](auto& r) { return static_cast<double>(r.writes); });
  auto cpu = median([](auto& r) { return r.cpu_ns_per_event; });
  uint64_t wmin = ~uint64_t{0}, wmax = 0;
  std::string all;
  for (auto& r : results) {
    wmin = std::min(wmin, r.writes);
    wmax = std::max(wmax, r.writes);
    all += (all.empty() ? "" : ",") + std::to_string(r.writes);
  }
  json_line{"burst"}
    .add("events", events)
    .add("writes", static_cast<uint64_t>(writes))
    .add("settle_ms", settle, 2)
    .add("events_per_s", static_cast<double>(events) / (settle / 1e3), 0)
    .add("send_ms", sent, 2)
    .add("send_events_per_s", static_cast<double>(events) / (sent / 1e3), 0)
    .add("cpu_ns_per_event", cpu, 0)
    .add("reps", reps)
    .add("writes_min", wmin)
    .add("writes_max", wmax)
    .add("writes_each", all)
    .print();
}

// -- throughput: events that change nothing ----------------------------------

void throughput_group(const options& opt) {
  scratch_dir scratch{opt.dir, "throughput"};
  const size_t events = opt.quick ? 100'000 : 1'000'000;
  const size_t reps = opt.quick ? 1 : 5;
  bench_system bs;
  auto& sys = *bs.sys;
  probe p;
  auto writer = spawn_memcached_cfg(sys, slots_spec(scratch.path() + "/file",
                                                    &p, true));
  check(p.wait_beyond(0), "the writer's initial write did not complete");
  auto initial = full_snapshot();
  std::vector<double> rates, send_rates, cpus;
  for (size_t rep = 0; rep < reps; ++rep) {
    // Half filtered out (not the module's keys), half unchanged (a key's
    // current value): neither makes a write.
    std::vector<config_change> changes;
    changes.reserve(events);
    for (size_t i = 0; i < events; ++i) {
      if (i % 2 == 0) {
        changes.push_back(
          config_change{"x/" + std::to_string(i), config_value{int64_t{1}}});
      } else {
        auto key = "b/" + std::to_string(i % slots_module::slots);
        changes.push_back(config_change{key, initial.at(key)});
      }
    }
    auto before = status_of(sys, writer);
    caf::scoped_actor self{sys};
    MCFG_PROFILE_START();
    auto cpu0 = cpu_ns();
    auto t0 = now_ns();
    for (auto& change : changes)
      caf::anon_send(writer, change_atom::value, std::move(change));
    auto t_sent = now_ns();
    // Answered once every change before it went through.
    self->request(writer, caf::infinite, sync_atom::value)
      .receive([](caf::ok_atom) {},
               [&](caf::error& err) { fail("sync: " + sys.render(err)); });
    auto t1 = now_ns();
    MCFG_PROFILE_STOP();
    cpus.push_back(static_cast<double>(cpu_ns() - cpu0)
                   / static_cast<double>(events));
    auto after = status_of(sys, writer);
    check(after.ignored - before.ignored == events,
          "not every event was ignored");
    check(after.writes == before.writes, "a no-op event caused a write");
    rates.push_back(static_cast<double>(events) * 1e9
                    / static_cast<double>(t1 - t0));
    send_rates.push_back(static_cast<double>(events) * 1e9
                         / static_cast<double>(t_sent - t0));
  }
  std::sort(rates.begin(), rates.end());
  std::sort(send_rates.begin(), send_rates.end());
  std::sort(cpus.begin(), cpus.end());
  json_line{"throughput"}
    .add("events", events)
    .add("events_per_s", rates[rates.size() / 2], 0)
    .add("events_per_s_min", rates.front(), 0)
    .add("events_per_s_max", rates.back(), 0)
    .add("send_events_per_s", send_rates[send_rates.size() / 2], 0)
    .add("cpu_ns_per_event", cpus[cpus.size() / 2], 0)
    .add("reps", reps)
    .add("writes", uint64_t{0})
    .print();
  stop(sys, writer);
}

// -- memory: idle writers ------------------------------------------------------

struct heap_figures {
  int64_t rss;
  int64_t heap;
};

heap_figures heap_now() {
  auto mi = ::mallinfo2();
  return {resident_bytes(), static_cast<int64_t>(mi.uordblks + mi.hblkhd)};
}

void memory_group(const options& opt) {
  scratch_dir scratch{opt.dir, "memory"};
  const size_t writers = opt.quick ? 1'000 : 10'000;
  bench_system bs;
  auto& sys = *bs.sys;
  std::atomic<uint64_t> written{0};
  auto spec_for = [&](size_t i) {
    writer_spec spec;
    spec.settings.path = scratch.path() + "/w" + std::to_string(i);
    // The page cache is no part of the process: fsync changes nothing here
    // but the time it takes to start 10,000 writers.
    spec.settings.durable = false;
    spec.make_module = [] { return std::make_unique<tiny_module>(); };
    spec.read_snapshot = [] { return snapshot{}; };
    spec.refresh = [&written] {
      written.fetch_add(1, std::memory_order_release);
    };
    return spec;
  };
  auto wait_written = [&](uint64_t n) {
    auto deadline = steady::now() + std::chrono::seconds(60);
    while (written.load(std::memory_order_acquire) < n) {
      check(steady::now() < deadline, "idle writers did not start");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  // Warm up: whatever the first writer initialises once.
  std::vector<memcached_cfg_actor> handles;
  handles.reserve(writers + 1);
  handles.push_back(spawn_memcached_cfg(sys, spec_for(writers)));
  wait_written(1);
  auto before = heap_now();
  auto t0 = now_ns();
  for (size_t i = 0; i < writers; ++i)
    handles.push_back(spawn_memcached_cfg(sys, spec_for(i)));
  wait_written(writers + 1);
  auto t1 = now_ns();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto after = heap_now();
  auto n = static_cast<double>(writers);
  json_line{"memory"}
    .add("writers", writers)
    .add("bytes_per_actor", static_cast<double>(after.rss - before.rss) / n, 0)
    .add("heap_bytes_per_actor",
         static_cast<double>(after.heap - before.heap) / n, 0)
    .add("rss_before_kib", before.rss / 1024)
    .add("rss_after_kib", after.rss / 1024)
    .add("spawn_and_write_ms", static_cast<double>(t1 - t0) / 1e6, 1)
    .add("sizeof_writer_spec", sizeof(writer_spec))
    .add("sizeof_writer_settings", sizeof(writer_settings))
    .add("sizeof_std_function", sizeof(std::function<void()>))
    .add("path_bytes", spec_for(0).settings.path.size())
    .print();
  for (auto& h : handles)
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
}

// The same typed interface with empty state and handlers that do nothing:
// what CAF itself costs per actor.
struct empty_state {
  static inline const char* name = "bare";
};

memcached_cfg_actor::behavior_type
bare_writer(memcached_cfg_actor::stateful_pointer<empty_state>) {
  return {
    [](change_atom, const config_change&) {},
    [](sync_atom) { return caf::ok_atom::value; },
    [](reload_atom) {},
    [](reset_atom) {},
    [](status_atom) { return writer_status{}; },
  };
}

void memory_caf_group(const options& opt) {
  const size_t actors = opt.quick ? 1'000 : 10'000;
  bench_system bs;
  auto& sys = *bs.sys;
  std::vector<memcached_cfg_actor> handles;
  handles.reserve(actors + 1);
  caf::scoped_actor self{sys};
  auto ask = [&](const memcached_cfg_actor& h) {
    self->request(h, caf::infinite, sync_atom::value)
      .receive([](caf::ok_atom) {},
               [&](caf::error& err) { fail("sync: " + sys.render(err)); });
  };
  handles.push_back(sys.spawn(bare_writer));
  ask(handles.back());
  auto before = heap_now();
  for (size_t i = 0; i < actors; ++i)
    handles.push_back(sys.spawn(bare_writer));
  // Each has run its initialisation once it answers.
  for (size_t i = 1; i < handles.size(); ++i)
    ask(handles[i]);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto after = heap_now();
  auto n = static_cast<double>(actors);
  json_line{"memory_caf"}
    .add("actors", actors)
    .add("bytes_per_actor", static_cast<double>(after.rss - before.rss) / n, 0)
    .add("heap_bytes_per_actor",
         static_cast<double>(after.heap - before.heap) / n, 0)
    .add("sizeof_actor_object",
         sizeof(caf::actor_storage<
                caf::stateful_actor<empty_state, memcached_cfg_actor::base>>))
    .add("sizeof_event_based_actor", sizeof(caf::event_based_actor))
    .print();
  for (auto& h : handles)
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
}

// -- restart: a supervised writer killed --------------------------------------

void restart_group(const options& opt) {
  scratch_dir scratch{opt.dir, "restart"};
  auto floor_dir = scratch.sub("floor");
  auto writer_dir = scratch.sub("writer");
  auto bytes = slots_module{nullptr}.produce().text();
  bytes.resize(4096, 'x');
  bench_system bs;
  auto& sys = *bs.sys;
  probe p;
  p.stamp = true;
  auto spec = slots_spec(writer_dir + "/file", &p, true);
  const auto id = caf::atom("bench_w");
  sup::supervisor_flags flags;
  flags.name = "bench";
  flags.intensity = 1'000'000;
  flags.period = std::chrono::seconds(1);
  auto child = sup::worker_child(id, sup::make_start([spec](caf::actor_system& s) {
                                   return spawn_memcached_cfg(s, spec);
                                 }));
  child.shutdown = sup::shutdown_policy::brutal_kill();
  auto root = sup::start_supervisor(sys, flags, {child});
  check(static_cast<bool>(root), "the supervisor did not start");
  check(p.wait_beyond(0), "the first incarnation did not write");

  auto incarnation = [&](const caf::actor& not_this) {
    auto deadline = steady::now() + std::chrono::seconds(30);
    for (;;) {
      auto h = sys.registry().get<caf::actor>(id);
      if (h && h != not_this)
        return h;
      check(steady::now() < deadline, "no new incarnation registered");
      std::this_thread::yield();
    }
  };
  distribution floor, restart, to_init, init_to_write;
  const size_t block = 5;
  const size_t rounds = (opt.quick ? 20 : 500) / block;
  caf::actor current = incarnation(caf::actor{});
  for (size_t r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < block; ++i) {
      auto t0 = now_ns();
      check(raw_replace(floor_dir, floor_dir + "/file.tmp",
                        floor_dir + "/file", bytes, true),
            "floor failed");
      floor.add_ns(now_ns() - t0);
    }
    for (size_t i = 0; i < block; ++i) {
      auto seen = p.refreshes.load(std::memory_order_acquire);
      MCFG_PROFILE_START();
      auto t0 = now_ns();
      caf::anon_send_exit(current, caf::exit_reason::kill);
      check(p.wait_beyond(seen), "the new incarnation did not write");
      MCFG_PROFILE_STOP();
      restart.add_ns(p.refresh_ns.load() - t0);
      to_init.add_ns(p.created_ns.load() - t0);
      init_to_write.add_ns(p.refresh_ns.load() - p.created_ns.load());
      current = incarnation(current);
    }
  }
  auto f50 = floor.p50();
  json_line{"restart"}
    .add("p50_us", restart.p50())
    .add("p99_us", restart.p99())
    .add("ratio_p50_to_floor", restart.p50() / f50, 3)
    .add("ratio_p10_to_floor", restart.pct(0.10) / floor.pct(0.10), 3)
    .add("floor_p50_us", f50)
    .add("floor_p99_us", floor.p99())
    .add("kill_to_new_module_p50_us", to_init.p50())
    .add("new_module_to_refresh_p50_us", init_to_write.p50())
    .add("samples", restart.us.size())
    .print();
  caf::scoped_actor self{sys};
  self->monitor(*root);
  self->send_exit(*root, caf::exit_reason::user_shutdown);
  self->receive([](caf::down_msg&) {});
}

// -- the driver ---------------------------------------------------------------

const std::vector<std::string> groups = {
  "machine", "memory", "memory_caf", "latency", "latency_nofsync",
  "burst",   "throughput", "restart",
};

int run_group(const options& opt) {
  // Restarts log a line each; keep the output to JSON.
  log::set_sink([](log::level, const std::string&) {});
  const auto& g = opt.scenario;
  if (g == "machine")
    machine(opt);
  else if (g == "memory")
    memory_group(opt);
  else if (g == "memory_caf")
    memory_caf_group(opt);
  else if (g == "latency")
    latency_group(opt, true);
  else if (g == "latency_nofsync")
    latency_group(opt, false);
  else if (g == "burst")
    burst_group(opt);
  else if (g == "throughput")
    throughput_group(opt);
  else if (g == "restart")
    restart_group(opt);
  else
    fail("unknown scenario group " + g);
  return 0;
}

std::string shell_quote(const std::string& x) {
  std::string out = "'";
  for (char c : x) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string self_path() {
  std::vector<char> buf(4096);
  auto n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  check(n > 0, "readlink /proc/self/exe");
  return std::string(buf.data(), static_cast<size_t>(n));
}

std::string fmt(double x, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, x);
  return buf;
}

/// 1234567 as "1,234,567".
std::string thousands(double x) {
  auto s = std::to_string(static_cast<int64_t>(std::llround(x)));
  std::string out;
  int count = 0;
  for (auto i = s.rbegin(); i != s.rend(); ++i) {
    if (count > 0 && count % 3 == 0 && *i != '-')
      out.insert(out.begin(), ',');
    out.insert(out.begin(), *i);
    ++count;
  }
  return out;
}

void print_table(const std::map<std::string, nlohmann::json>& r) {
  struct row {
    std::string scenario, figure, value, target, met;
  };
  std::vector<row> rows;
  auto has = [&](const char* s) { return r.count(s) > 0; };
  auto yes = [](bool ok) { return std::string{ok ? "yes" : "NO"}; };
  if (has("floor")) {
    auto& j = r.at("floor");
    rows.push_back({"floor", "p50 / p99",
                    fmt(j["p50_us"]) + " / " + fmt(j["p99_us"]) + " us", "",
                    ""});
    rows.push_back({"floor", "measured again: p50 (p10) / first (noise)",
                    fmt(j["again_p50_us"]) + " us = "
                      + fmt(j["again_ratio_p50"], 2) + " x ("
                      + fmt(j["again_ratio_p10"], 2) + " x)",
                    "", ""});
  }
  if (has("port")) {
    auto& j = r.at("port");
    rows.push_back({"port", "p50 / p99 (file port, no actor)",
                    fmt(j["p50_us"]) + " / " + fmt(j["p99_us"]) + " us = "
                      + fmt(j["ratio_p50_to_floor"], 2) + " x floor",
                    "", ""});
  }
  if (has("latency")) {
    auto& j = r.at("latency");
    double ratio = j["ratio_p50_to_floor"];
    rows.push_back({"latency", "p50 / p99, p50 (p10) / floor's",
                    fmt(j["p50_us"]) + " / " + fmt(j["p99_us"]) + " us = "
                      + fmt(ratio, 2) + " x ("
                      + fmt(j["ratio_p10_to_floor"], 2) + " x)",
                    "<= 1.10 x", yes(ratio <= 1.10)});
    double ext = j["external_ratio_p50_to_floor"];
    rows.push_back({"latency", "sent from a foreign thread",
                    fmt(j["external_p50_us"]) + " / "
                      + fmt(j["external_p99_us"]) + " us = " + fmt(ext, 2)
                      + " x floor",
                    "", ""});
  }
  if (has("floor_nofsync")) {
    auto& j = r.at("floor_nofsync");
    rows.push_back({"floor_nofsync", "p50 / p99; again (noise)",
                    fmt(j["p50_us"]) + " / " + fmt(j["p99_us"]) + " us; "
                      + fmt(j["again_ratio_p50"], 2) + " x",
                    "", ""});
  }
  if (has("durable")) {
    auto& j = r.at("durable");
    std::string cost;
    if (has("latency")) {
      double on = r.at("latency")["p50_us"];
      double off = j["p50_us"];
      cost = "; fsync costs " + fmt(on - off) + " us of " + fmt(on);
    }
    rows.push_back({"durable off", "p50 / p99, p50 (p10) / floor_nofsync's",
                    fmt(j["p50_us"]) + " / " + fmt(j["p99_us"]) + " us = "
                      + fmt(j["ratio_p50_to_floor"], 2) + " x ("
                      + fmt(j["ratio_p10_to_floor"], 2) + " x)" + cost,
                    "", ""});
  }
  if (has("burst")) {
    auto& j = r.at("burst");
    uint64_t writes = j["writes"];
    double eps = j["events_per_s"];
    rows.push_back({"burst", "events -> writes (min-max)",
                    thousands(j["events"]) + " -> " + std::to_string(writes)
                      + " (" + std::to_string(j["writes_min"].get<uint64_t>())
                      + "-" + std::to_string(j["writes_max"].get<uint64_t>())
                      + ")",
                    "<= 3", yes(writes <= 3)});
    rows.push_back({"burst", "settle, events/s",
                    fmt(j["settle_ms"]) + " ms, " + thousands(eps) + "/s",
                    ">= 1,000,000/s", yes(eps >= 1e6)});
  }
  if (has("throughput")) {
    auto& j = r.at("throughput");
    double eps = j["events_per_s"];
    rows.push_back({"throughput", "no-op events/s (min-max)",
                    thousands(eps) + "/s ("
                      + thousands(j["events_per_s_min"]) + "-"
                      + thousands(j["events_per_s_max"]) + ")",
                    ">= 2,000,000/s", yes(eps >= 2e6)});
  }
  if (has("memory")) {
    auto& j = r.at("memory");
    double b = j["bytes_per_actor"];
    rows.push_back({"memory", "RSS / heap bytes per idle writer",
                    thousands(b) + " / " + thousands(j["heap_bytes_per_actor"]),
                    "<= 2,048", yes(b <= 2048)});
  }
  if (has("memory_caf")) {
    auto& j = r.at("memory_caf");
    rows.push_back({"memory_caf", "RSS / heap per bare CAF actor",
                    thousands(j["bytes_per_actor"]) + " / "
                      + thousands(j["heap_bytes_per_actor"]),
                    "", ""});
  }
  if (has("restart")) {
    auto& j = r.at("restart");
    double ratio = j["ratio_p50_to_floor"];
    rows.push_back({"restart", "p50 / p99, p50 (p10) / floor's",
                    fmt(j["p50_us"]) + " / " + fmt(j["p99_us"]) + " us = "
                      + fmt(ratio, 2) + " x ("
                      + fmt(j["ratio_p10_to_floor"], 2) + " x)",
                    "<= 2.00 x", yes(ratio <= 2.0)});
  }
  size_t w[4] = {8, 6, 5, 6};
  for (auto& x : rows) {
    w[0] = std::max(w[0], x.scenario.size());
    w[1] = std::max(w[1], x.figure.size());
    w[2] = std::max(w[2], x.value.size());
    w[3] = std::max(w[3], x.target.size());
  }
  auto pad = [](const std::string& s, size_t n) {
    return s + std::string(n > s.size() ? n - s.size() : 0, ' ');
  };
  auto line = [&](const row& x) {
    std::printf("| %s | %s | %s | %s | %s |\n", pad(x.scenario, w[0]).c_str(),
                pad(x.figure, w[1]).c_str(), pad(x.value, w[2]).c_str(),
                pad(x.target, w[3]).c_str(), pad(x.met, 3).c_str());
  };
  std::printf("\n");
  line({"scenario", "figure", "value", "target", "met"});
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(w[0] + 2, '-').c_str(),
              std::string(w[1] + 2, '-').c_str(),
              std::string(w[2] + 2, '-').c_str(),
              std::string(w[3] + 2, '-').c_str(), std::string(5, '-').c_str());
  for (auto& x : rows)
    line(x);
  if (r.count("machine")) {
    auto& m = r.at("machine");
    std::printf("\n%s cores, %s, %s at %s, CAF %s with %s workers, %s build%s\n",
                std::to_string(m["nproc"].get<int>()).c_str(),
                m["cpu"].get<std::string>().c_str(),
                m["fs"].get<std::string>().c_str(),
                m["dir"].get<std::string>().c_str(),
                m["caf_version"].get<std::string>().c_str(),
                std::to_string(m["caf_workers"].get<int>()).c_str(),
                m["build"].get<std::string>().c_str(),
                m["quick"].get<bool>() ? " (quick run)" : "");
  }
}

int run_all(const options& opt, const std::vector<std::string>& only) {
  auto exe = self_path();
  std::map<std::string, nlohmann::json> results;
  std::ofstream json_out;
  if (!opt.json_path.empty())
    json_out.open(opt.json_path);
  auto t0 = now_ns();
  for (auto& g : groups) {
    if (!only.empty() && g != "machine"
        && std::find(only.begin(), only.end(), g) == only.end())
      continue;
    auto cmd = shell_quote(exe) + " --scenario " + g + " --dir "
               + shell_quote(opt.dir)
               + " --burst-events " + std::to_string(opt.burst_events)
               + " --workers " + std::to_string(opt.workers)
               + (opt.quick ? " --quick" : "");
    auto started = now_ns();
    auto pipe = ::popen(cmd.c_str(), "r");
    check(pipe != nullptr, "popen " + cmd);
    std::vector<char> buf(1 << 16);
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe)) {
      std::string line = buf.data();
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
        line.pop_back();
      if (line.empty())
        continue;
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
      if (json_out)
        json_out << line << '\n';
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.contains("scenario"))
        results[j["scenario"].get<std::string>()] = j;
    }
    auto rc = ::pclose(pipe);
    if (rc != 0)
      fail("scenario group " + g + " failed (status " + std::to_string(rc)
           + ")");
    std::fprintf(stderr, "mcfg_bench: %s took %.1f s\n", g.c_str(),
                 static_cast<double>(now_ns() - started) / 1e9);
  }
  print_table(results);
  std::printf("\nmcfg_bench: all scenarios in %.1f s; load average %.2f at "
              "the start, %.2f at the end\n",
              static_cast<double>(now_ns() - t0) / 1e9,
              results.count("machine")
                ? results["machine"]["loadavg_1m_at_start"].get<double>()
                : 0.0,
              load_average());
  return 0;
}

} // namespace
} // namespace mcfg::bench

int main(int argc, char** argv) {
  using namespace mcfg::bench;
  options opt;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        fail(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--dir")
      opt.dir = value();
    else if (arg == "--scenario")
      opt.scenario = value();
    else if (arg == "--only")
      only.push_back(value());
    else if (arg == "--json")
      opt.json_path = value();
    else if (arg == "--quick")
      opt.quick = true;
    else if (arg == "--burst-events")
      opt.burst_events = std::stoul(value());
    else if (arg == "--workers")
      opt.workers = std::stoul(value());
    else if (arg == "--help" || arg == "-h") {
      std::printf(
        "usage: mcfg_bench [--dir DIR] [--json FILE] [--quick] [--only GROUP]"
        "... [--burst-events N] [--workers N]\n"
        "       mcfg_bench --scenario GROUP [--dir DIR] [--quick]\n"
        "groups: machine memory memory_caf latency latency_nofsync burst "
        "throughput restart\n");
      return 0;
    } else
      fail("unknown argument " + arg + " (try --help)");
  }
  if (opt.dir.empty()) {
    auto tmp = std::getenv("TMPDIR");
    opt.dir = std::string{tmp && *tmp ? tmp : "/tmp"} + "/mcfg-bench";
  }
  fs::create_directories(opt.dir);
  opt.dir = fs::absolute(opt.dir).lexically_normal().string();
  if (!opt.dir.empty() && opt.dir.back() == '/')
    opt.dir.pop_back();
  g_workers = opt.workers;
  if (!opt.scenario.empty())
    return run_group(opt);
  return run_all(opt, only);
}
