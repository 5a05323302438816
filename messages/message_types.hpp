#pragma once
#include <caf/fwd.hpp>

namespace mcfg {

/// Announces the message types and the error category of messages/ to an
/// actor system config, so they render as text (and could be serialized).
/// A program that runs supervisors also calls sup::add_message_types:
/// supervision/ is a library of its own that knows nothing of messages/, so
/// neither call can make the other.
void add_message_types(caf::actor_system_config& cfg);

} // namespace mcfg
