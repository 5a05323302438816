#pragma once
// The least a subscriber of the source of truth must understand, so that
// source/ can hold subscribers without knowing the writer (actors/); a
// memcached_cfg_actor converts to it.
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "memcached_cfg/messages/atoms.hpp"
#include "memcached_cfg/messages/config_change.hpp"

namespace mcfg {

using update_subscriber
  = caf::typed_actor<caf::reacts_to<change_atom, config_update>>;

} // namespace mcfg
