#include "bench/table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace mcfg::bench {
namespace {

// -- how a figure reads ------------------------------------------------------

std::string fmt(double x, int decimals) {
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

/// A number in one of the table's styles: ' ' one decimal (microseconds,
/// milliseconds), '3' three (seconds), 'x' a ratio ("1.07 x"), 'n' a count
/// ("1,000,000").
std::string styled(double x, char style) {
  switch (style) {
    case '3':
      return fmt(x, 3);
    case 'x':
      return fmt(x, 2) + " x";
    case 'n':
      return thousands(x);
    default:
      return fmt(x, 1);
  }
}

/// Fills a row's value text from a JSON line: `{key}` and `{key:S}` (S a
/// style) become the field's number; a `[...]` part is left out when a field
/// in it is missing. A missing field elsewhere shows as "?".
std::string render(const std::string& text, const nlohmann::json& j) {
  std::string out, part;
  bool in_part = false, part_ok = true;
  for (size_t i = 0; i < text.size(); ++i) {
    auto& to = in_part ? part : out;
    char c = text[i];
    if (c == '[') {
      in_part = true;
      part.clear();
      part_ok = true;
    } else if (c == ']') {
      in_part = false;
      if (part_ok)
        out += part;
    } else if (c == '{') {
      auto end = text.find('}', i);
      auto field = text.substr(i + 1, end - i - 1);
      char style = ' ';
      if (auto colon = field.find(':'); colon != std::string::npos) {
        style = field[colon + 1];
        field.resize(colon);
      }
      if (j.contains(field) && j[field].is_number())
        to += styled(j[field].get<double>(), style);
      else if (in_part)
        part_ok = false;
      else
        to += "?";
      i = end;
    } else {
      to += c;
    }
  }
  return out;
}

// -- the rows ----------------------------------------------------------------

/// What a figure must meet: `key` at most (or at least) `bound`.
struct target {
  const char* key = nullptr; ///< nullptr: the row has no target
  bool at_most = true;
  double bound = 0;
  char style = ' ';
  const char* unit = "";

  std::string text() const {
    if (key == nullptr)
      return "";
    return (at_most ? "<= " : ">= ") + styled(bound, style) + unit;
  }
  std::string met(const nlohmann::json& j) const {
    if (key == nullptr)
      return "";
    double x = j.value(key, std::nan(""));
    return (at_most ? x <= bound : x >= bound) ? "yes" : "NO";
  }
};

target at_most(const char* key, double bound, char style) {
  return {key, true, bound, style, ""};
}

target at_least(const char* key, double bound, char style, const char* unit) {
  return {key, false, bound, style, unit};
}

/// One row of the table: which JSON line it reads, what it shows, the value
/// as text with placeholders (see render), and what the value must meet.
struct row {
  const char* scenario;
  const char* figure;
  std::string value;
  target goal = {};
  /// The scenario's name in the table, when not the JSON line's.
  const char* shown = nullptr;
};

/// A latency's p50 and p99 and how its p50 and p10 compare with the floor's
/// (measured in the same run, interleaved with it).
const std::string against_floor
  = "{p50_us} / {p99_us} us = "
    "{ratio_p50_to_floor:x} ({ratio_p10_to_floor:x})";

const std::vector<row> rows = {
  {"floor", "p50 / p99", "{p50_us} / {p99_us} us"},
  {"floor", "measured again: p50 (p10) / first (noise)",
   "{again_p50_us} us = {again_ratio_p50:x} ({again_ratio_p10:x})"},
  {"port", "p50 / p99 (file port, no actor)",
   "{p50_us} / {p99_us} us = {ratio_p50_to_floor:x} floor"},
  {"latency", "p50 / p99, p50 (p10) / floor's", against_floor,
   at_most("ratio_p50_to_floor", 1.10, 'x')},
  {"latency", "sent from a foreign thread",
   "{external_p50_us} / {external_p99_us} us = "
   "{external_ratio_p50_to_floor:x} floor"},
  {"floor_nofsync", "p50 / p99; again (noise)",
   "{p50_us} / {p99_us} us; {again_ratio_p50:x}"},
  {"durable",
   "p50 / p99, p50 (p10) / floor_nofsync's",
   against_floor + "[; fsync costs {fsync_cost_us} us of {latency_p50_us}]",
   {},
   "durable off"},
  {"burst", "events -> writes (min-max)",
   "{events:n} -> {writes:n} ({writes_min:n}-{writes_max:n})",
   at_most("writes_max", 2, 'n')},
  {"burst", "settle, events/s", "{settle_ms} ms, {events_per_s:n}/s",
   at_least("events_per_s", 1e6, 'n', "/s")},
  {"throughput", "no-op events/s (min-max)",
   "{events_per_s:n}/s ({events_per_s_min:n}-{events_per_s_max:n})",
   at_least("events_per_s", 2e6, 'n', "/s")},
  {"memory", "RSS / heap bytes per idle writer",
   "{bytes_per_actor:n} / {heap_bytes_per_actor:n}",
   at_most("bytes_per_actor", 2048, 'n')},
  {"memory_caf", "RSS / heap per bare CAF actor",
   "{bytes_per_actor:n} / {heap_bytes_per_actor:n}"},
  {"restart", "p50 / p99, p50 (p10) / floor's", against_floor,
   at_most("ratio_p50_to_floor", 2.0, 'x')},
  {"propagation_rename", "saved -> in the file: p50 / p99, / floor's",
   against_floor, at_most("ratio_p50_to_floor", 2.0, 'x'),
   "propagation (rename)"},
  {"propagation_in_place", "saved -> in the file: p50 / p99, / floor's",
   against_floor, at_most("ratio_p50_to_floor", 2.0, 'x'),
   "propagation (in place)"},
  {"confirmed", "saved -> file renamed (mcfgd's part), / idle floor's",
   "{p50_us} / {p99_us} us = {ratio_p50_to_idle_floor:x} "
   "({ratio_p10_to_idle_floor:x})",
   at_most("ratio_p50_to_idle_floor", 2.0, 'x'), "confirmed (mcfgd)"},
  {"confirmed",
   "floor p50: after 120 ms idle; back to back",
   "{idle_floor_p50_us}; {floor_p50_us} us (mcfgd = "
   "{ratio_p50_to_floor:x} the latter)",
   {},
   "confirmed (mcfgd)"},
  {"confirmed",
   "renamed -> memcached lets in: p50 / p99",
   "{memcached_p50_ms} / {memcached_p99_ms} ms (saves at "
   "{phase_min_ms}-{phase_max_ms} ms of its second)",
   {},
   "confirmed (memcached)"},
  {"confirmed",
   "saved -> sync returned: p50 / p99",
   "{sync_p50_ms} / {sync_p99_ms} ms[ (a sync with nothing to wait for: "
   "{idle_sync_p50_ms} ms)]",
   {},
   "confirmed (sync)"},
  {"confirmed", "sync after memcached let in: p50 / p99 (early, > 50 ms)",
   "{lag_p50_ms} / {lag_p99_ms} ms ({lag_outside_0_50ms:n} of {samples:n})",
   at_most("lag_outside_0_50ms", 0, 'n'), "confirmed (sync)"},
  {"confirmed", "refused right after sync / syncs failed",
   "{new_refused_after_sync:n} / {syncs_failed:n} of {samples:n}",
   at_most("new_refused_after_sync", 0, 'n'), "confirmed (sync)"},
  {"cluster_propagation_3", "put -> 3 nodes written and refreshed: p50 / p99",
   "{p50_us} / {p99_us} us = {ratio_p50_to_floor:x} floor",
   at_most("ratio_p50_to_floor", 3.0, 'x')},
  {"cluster_propagation_3", "p50s: etcd's commit; then the nodes",
   "{commit_p50_us}; first file +{first_file_p50_us}, last "
   "+{last_file_p50_us}, refreshed +{refreshed_p50_us} us"},
  {"cluster_propagation_10", "put -> 10 nodes written and refreshed",
   "{p50_us} / {p99_us} us = {ratio_p50_to_floor:x} floor",
   at_most("ratio_p50_to_floor", 3.0, 'x')},
  {"cluster_propagation_10", "p50s: etcd's commit; then the nodes",
   "{commit_p50_us}; first file +{first_file_p50_us}, last "
   "+{last_file_p50_us}, refreshed +{refreshed_p50_us} us"},
};

/// The scale group's rows for one N (`scenario` "scale_<N>"). The thread
/// bound is the io pool's 16 threads plus 32.
std::vector<row> scale_rows(const char* scenario, const char* shown) {
  return {
    {scenario, "mcfgd start -> every file; / the floor's",
     "{start_s:3} / {floor_start_s:3} s = {start_ratio:x} (CPU {start_cpu_s} "
     "s)",
     at_most("start_ratio", 1.5, 'x'), shown},
    {scenario, "edit -> every file; / the floor's",
     "{edit_s:3} / {floor_edit_s:3} s = {edit_ratio:x} (CPU {edit_cpu_s} s)",
     at_most("edit_ratio", 1.5, 'x'), shown},
    {scenario, "threads (io pool); descriptors",
     "{threads:n} ({io_threads:n}); {fds:n}", at_most("threads", 48, 'n'),
     shown},
    {scenario,
     "idle CPU (context switches)",
     "{idle_cpu_pct:3} % over {idle_s} s ({idle_switches:n})",
     {"idle_cpu_pct", true, 0.5, ' ', " %"},
     shown},
    {scenario, "RSS after idle, per file",
     "{rss_kib:n} KiB, {rss_per_file_bytes:n} bytes",
     at_most("rss_per_file_bytes", 4096, 'n'), shown},
    {scenario,
     "GET /v1/status p50 / p99; ?files=all",
     "{status_p50_ms} / {status_p99_ms} ms, {status_bytes:n} bytes; "
     "{status_all_ms} ms, {status_all_bytes:n} bytes",
     {},
     shown},
  };
}

/// The io_stall group's rows.
const std::vector<row> io_stall_rows = {
  {"io_stall", "the 996 others: landed at start; an edit while stuck",
   "{landed:n} in {others_landed_s:3} s; {edit_landed:n} in {edit_landed_s:3} "
   "s"},
  {"io_stall", "status p50 / p99 (4 stuck), backend / JSON p50",
   "{status_p50_ms} / {status_p99_ms} ms, {backend_p50_ms} / {json_p50_ms:3} "
   "ms"},
  {"io_stall", "io pool: free threads before / after the give-ups",
   "{pool_free_before_give_up:n} / {pool_free_after_give_up:n} of "
   "{io_threads:n}"},
  {"io_stall", "stuck: listed while stuck / gave up (of 4)",
   "{stuck_reported:n} / {gave_up:n} (first at {first_give_up_s} s)",
   at_least("stuck_reported", 4, 'n', "")},
};

/// Every row, in the order of the groups.
std::vector<row> all_rows() {
  auto out = rows;
  for (auto& x : scale_rows("scale_1000", "scale (1,000)"))
    out.push_back(x);
  for (auto& x : scale_rows("scale_10000", "scale (10,000)"))
    out.push_back(x);
  out.insert(out.end(), io_stall_rows.begin(), io_stall_rows.end());
  return out;
}

/// The figures that join two groups' lines (each group runs in a process of
/// its own): what fsync costs, the durable latency less the one without.
results joined(results r) {
  if (r.count("latency") && r.count("durable")) {
    double on = r["latency"]["p50_us"];
    double off = r["durable"]["p50_us"];
    r["durable"]["latency_p50_us"] = on;
    r["durable"]["fsync_cost_us"] = on - off;
  }
  return r;
}

void print_machine(const nlohmann::json& m) {
  std::printf("\n%d cores, %s, %s at %s, CAF %s with %d workers, %s build%s\n",
              m["nproc"].get<int>(), m["cpu"].get<std::string>().c_str(),
              m["fs"].get<std::string>().c_str(),
              m["dir"].get<std::string>().c_str(),
              m["caf_version"].get<std::string>().c_str(),
              m["caf_workers"].get<int>(),
              m["build"].get<std::string>().c_str(),
              m["quick"].get<bool>() ? " (quick run)" : "");
}

} // namespace

void print_table(const results& run) {
  auto r = joined(run);
  using cells = std::vector<std::string>;
  std::vector<cells> lines = {{"scenario", "figure", "value", "target", "met"}};
  for (auto& x : all_rows()) {
    auto j = r.find(x.scenario);
    if (j == r.end())
      continue;
    lines.push_back({x.shown ? x.shown : x.scenario, x.figure,
                     render(x.value, j->second), x.goal.text(),
                     x.goal.met(j->second)});
  }
  std::vector<size_t> width(lines.front().size(), 0);
  for (auto& l : lines)
    for (size_t c = 0; c < l.size(); ++c)
      width[c] = std::max(width[c], l[c].size());
  auto print = [&](const cells& l) {
    std::string out = "|";
    for (size_t c = 0; c < l.size(); ++c)
      out += " " + l[c] + std::string(width[c] - l[c].size(), ' ') + " |";
    std::printf("%s\n", out.c_str());
  };
  std::printf("\n");
  print(lines.front());
  std::string rule = "|";
  for (auto w : width)
    rule += std::string(w + 2, '-') + "|";
  std::printf("%s\n", rule.c_str());
  for (size_t i = 1; i < lines.size(); ++i)
    print(lines[i]);
  if (r.count("machine"))
    print_machine(r.at("machine"));
}

} // namespace mcfg::bench
