// The memory group: what an idle writer adds to the process (resident and
// heap bytes), and what a bare CAF actor with the same interface does.
#include <functional>

#include <malloc.h>

#include <caf/actor_storage.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "bench/bench_support.hpp"

namespace mcfg::bench {
namespace {

struct heap_figures {
  int64_t rss;
  int64_t heap;
};

heap_figures heap_now() {
  auto mi = ::mallinfo2();
  return {resident_bytes(), static_cast<int64_t>(mi.uordblks + mi.hblkhd)};
}

/// A memory line: `count` actors (`what`) took the process from `before` to
/// `after`; what each added.
json_line per_actor(const std::string& scenario, const char* what, size_t count,
                    const heap_figures& before, const heap_figures& after) {
  auto n = static_cast<double>(count);
  json_line out{scenario};
  out.add(what, count)
    .add("bytes_per_actor", static_cast<double>(after.rss - before.rss) / n, 0)
    .add("heap_bytes_per_actor",
         static_cast<double>(after.heap - before.heap) / n, 0);
  return out;
}

// The same typed interface with empty state and handlers that do nothing:
// what CAF itself costs per actor.
struct empty_state {
  static inline const char* name = "bare";
};

memcached_cfg_actor::behavior_type
bare_writer(memcached_cfg_actor::stateful_pointer<empty_state>) {
  return {
    [](change_atom, const config_update&) {},
    [](sync_atom) { return caf::ok_atom::value; },
    [](sync_atom, uint64_t) { return caf::ok_atom::value; },
    [](reload_atom) {},
    [](reset_atom) {},
    [](status_atom) { return writer_status{}; },
  };
}

} // namespace

void memory_group(const options& opt) {
  scratch_dir scratch{opt.dir, "memory"};
  const size_t writers = opt.quick ? 1'000 : 10'000;
  bench_system bs{opt};
  auto& sys = *bs.sys;
  std::atomic<uint64_t> written{0};
  auto spec_for = [&](size_t i) {
    writer_spec spec;
    spec.settings.path = scratch.path() + "/w" + std::to_string(i);
    // The page cache is no part of the process: fsync changes nothing here
    // but the time it takes to start 10,000 writers.
    spec.settings.durable = false;
    spec.make_module = [] { return std::make_unique<tiny_module>(); };
    spec.read_snapshot = [] { return versioned_snapshot{}; };
    spec.refresh = [&written](uint64_t) {
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
  per_actor("memory", "writers", writers, before, after)
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

void memory_caf_group(const options& opt) {
  const size_t actors = opt.quick ? 1'000 : 10'000;
  bench_system bs{opt};
  auto& sys = *bs.sys;
  std::vector<memcached_cfg_actor> handles;
  handles.reserve(actors + 1);
  caf::scoped_actor self{sys};
  handles.push_back(sys.spawn(bare_writer));
  sync_with(self, handles.back());
  auto before = heap_now();
  for (size_t i = 0; i < actors; ++i)
    handles.push_back(sys.spawn(bare_writer));
  // Each has run its initialisation once it answers.
  for (size_t i = 1; i < handles.size(); ++i)
    sync_with(self, handles[i]);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  per_actor("memory_caf", "actors", actors, before, heap_now())
    .add("sizeof_actor_object",
         sizeof(caf::actor_storage<
                caf::stateful_actor<empty_state, memcached_cfg_actor::base>>))
    .add("sizeof_event_based_actor", sizeof(caf::event_based_actor))
    .print();
  for (auto& h : handles)
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
}

} // namespace mcfg::bench
