#pragma once
// The summary a full run prints after its JSON lines: one table of the
// figures that matter, each row read from the JSON line of its scenario.
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace mcfg::bench {

/// A run's JSON lines by their "scenario".
using results = std::map<std::string, nlohmann::json>;

/// Prints the table (the rows whose scenario ran) and the machine it ran on.
void print_table(const results& r);

} // namespace mcfg::bench
