#pragma once
#include <string>

#include <caf/timestamp.hpp>

namespace mcfg {

/// A duration as node.yaml writes it, in the largest whole unit: "10s",
/// "250ms", "5us", "7ns".
std::string format_duration(caf::timespan d);

} // namespace mcfg
