#pragma once
// The store: the actor that owns the node's source of truth, whatever its
// backend. The file store (file_store.hpp) watches a YAML file; the etcd
// store (etcd_store.hpp) follows an etcd cluster. Both answer this one
// interface, so the node, its control API and its registration never ask
// which backend they talk to.
#include <cstdint>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "memcached_cfg/messages/atoms.hpp"
#include "memcached_cfg/messages/node_status.hpp"

namespace mcfg {

using store_actor = caf::typed_actor<
  // Look at the source now, as soon as it has settled (a save under way
  // is waited for, never read half-written): ok once it is loaded (or
  // unchanged), an error naming where when the edit is refused.
  caf::replies_to<reload_atom>::with<caf::ok_atom>,
  // The same, answered with the version published once the source is
  // looked at (for etcd: once the store holds etcd's current revision):
  // what a caller then syncs the writers to.
  caf::replies_to<sync_atom>::with<uint64_t>,
  caf::replies_to<status_atom>::with<source_status>>;

} // namespace mcfg
