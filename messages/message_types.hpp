#pragma once
#include <caf/fwd.hpp>

namespace mcfg {

/// Announces the message types and the error category of messages/ to an
/// actor system config, so they cross the network and render as text.
void add_message_types(caf::actor_system_config& cfg);

} // namespace mcfg
