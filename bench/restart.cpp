// The restart group: a supervised writer killed, timed until its successor
// replaced the file, against the floor measured in between.
#include <caf/actor_registry.hpp>

#include "bench/bench_support.hpp"

namespace mcfg::bench {

void restart_group(const options& opt) {
  scratch_dir scratch{opt.dir, "restart"};
  auto floor_dir = scratch.sub("floor");
  auto writer_dir = scratch.sub("writer");
  auto bytes = floor_bytes();
  bench_system bs{opt};
  auto& sys = *bs.sys;
  probe p;
  p.stamp = true;
  auto spec = slots_spec(writer_dir + "/file", &p, true);
  const auto id = caf::atom("bench_w");
  sup::supervisor_flags flags;
  flags.name = "bench";
  flags.intensity = 1'000'000;
  flags.period = std::chrono::seconds(1);
  auto child = sup::worker_child(id,
                                 sup::make_start([spec](caf::actor_system& s) {
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
    for (size_t i = 0; i < block; ++i)
      time_floor(floor, floor_dir, bytes, true);
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
  stop(sys, *root);
}

} // namespace mcfg::bench
