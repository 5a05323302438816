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
/// milliseconds), 'x' a ratio ("1.07 x"), 'n' a count ("1,000,000").
std::string styled(double x, char style) {
  switch (style) {
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
   at_most("writes", 3, 'n')},
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
  for (auto& x : rows) {
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
