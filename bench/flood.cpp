// The flood group: many changes sent to one writer at once. A burst's changes
// are all distinct and must coalesce into a few writes; a throughput run's
// change nothing (filtered out or unchanged) and must cause none.
#include "bench/bench_support.hpp"

namespace mcfg::bench {
namespace {

/// When a flood started (CPU and wall time) and when its last change left.
struct flood_times {
  int64_t cpu0, t0, sent;
};

/// Sends every change to the writer from this (foreign) thread, as fast as
/// it can, each as a version of its own (`version` counts them).
flood_times send_all(const memcached_cfg_actor& writer,
                     std::vector<config_change>& changes, uint64_t& version) {
  MCFG_PROFILE_START();
  flood_times out;
  out.cpu0 = cpu_ns();
  out.t0 = now_ns();
  for (auto& change : changes)
    caf::anon_send(writer, change_atom::value,
                   config_update{++version, {std::move(change)}});
  out.sent = now_ns();
  return out;
}

} // namespace

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
  bench_system bs{opt};
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
      changes.push_back(
        config_change{"b/" + std::to_string(unique),
                      config_value{"v" + std::to_string(unique) + "-"
                                   + std::to_string(rep)}});
      check(expected.handle_event(changes.back()), "a change changed nothing");
    }
    auto expected_text = expected.produce().text();
    auto seen = p.refreshes.load(std::memory_order_acquire);
    uint64_t version = 0;
    auto [cpu0, t0, t_sent] = send_all(writer, changes, version);
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
    results.push_back(
      {static_cast<double>(t_settled - t0) / 1e6,
       static_cast<double>(t_sent - t0) / 1e6, writes,
       static_cast<double>(cpu1 - cpu0) / static_cast<double>(events)});
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
  bench_system bs{opt};
  auto& sys = *bs.sys;
  probe p;
  auto writer = spawn_memcached_cfg(sys, slots_spec(scratch.path() + "/file",
                                                    &p, true));
  check(p.wait_beyond(0), "the writer's initial write did not complete");
  auto initial = full_snapshot();
  uint64_t version = 0;
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
    auto [cpu0, t0, t_sent] = send_all(writer, changes, version);
    // Answered once every change before it went through.
    sync_with(self, writer);
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

} // namespace mcfg::bench
