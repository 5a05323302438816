// The latency group: one change at a time, from the event to the refresh
// that follows the file's replacement, against the floor (the bare system
// calls) and the file port called directly; with fsync and without.
#include <functional>
#include <iterator>

#include <caf/event_based_actor.hpp>

#include "bench/bench_support.hpp"

namespace mcfg::bench {
namespace {

/// One key's change as the next version (`version` counts them).
config_update one_change(std::atomic<uint64_t>& version, const std::string& key,
                         const std::string& value) {
  return {++version, {config_change{key, config_value{value}}}};
}

/// Sends a change to the writer from inside the actor system, as the node's
/// source_of_truth does, stamping the time just before the send.
caf::behavior change_sender(caf::event_based_actor* self,
                            memcached_cfg_actor writer,
                            std::atomic<int64_t>* sent_ns,
                            std::atomic<uint64_t>* version) {
  return {
    [=](const std::string& key, const std::string& value) {
      sent_ns->store(now_ns(), std::memory_order_relaxed);
      self->send(writer, change_atom::value, one_change(*version, key, value));
    },
  };
}

void run(const options& opt, bool durable) {
  const std::string suffix = durable ? "" : "_nofsync";
  scratch_dir scratch{opt.dir, "latency"};
  auto floor_dir = scratch.sub("floor");
  auto floor_b_dir = scratch.sub("floorb");
  auto port_dir = scratch.sub("port");
  auto writer_dir = scratch.sub("writer");
  // The same 4 KiB the writer renders.
  auto bytes = floor_bytes();

  bench_system bs{opt};
  auto& sys = *bs.sys;
  probe p;
  p.stamp = true;
  auto writer = spawn_memcached_cfg(sys, slots_spec(writer_dir + "/file", &p,
                                                    durable));
  check(p.wait_beyond(0), "the writer's initial write did not complete");
  std::atomic<int64_t> sent_ns{0};
  std::atomic<uint64_t> version{0};
  auto sender = sys.spawn(change_sender, writer, &sent_ns, &version);
  auto port = make_posix_file_port();

  distribution floor, floor_b, port_d, internal, external, dispatch, hop, write;
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
    [&] { time_floor(floor, floor_dir, bytes, durable); },
    [&] { time_floor(floor_b, floor_b_dir, bytes, durable); },
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
                     one_change(version, key, value));
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

} // namespace

void latency_group(const options& opt) {
  run(opt, true);
}

void latency_nofsync_group(const options& opt) {
  run(opt, false);
}

} // namespace mcfg::bench
