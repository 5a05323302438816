#pragma once
// config_store: the node's source of truth (ARCHITECTURE.md §5). Loads the
// source YAML, watches it (polling on the actor clock, so an edit is seen
// within `poll_interval`), and publishes each accepted edit to the shared
// source_of_truth, which sends the changes to the writers. An edit that does
// not parse or validate is refused with file, line and column in the log;
// the last good state, and so every file, stays.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "source/source_document.hpp"
#include "source/source_of_truth.hpp"
#include "messages/atoms.hpp"
#include "messages/node_status.hpp"

namespace mcfg {

using config_store_actor = caf::typed_actor<
  // Look at the source file now; ok once it is loaded (or unchanged), an
  // error naming file, line and column when the edit is refused.
  caf::replies_to<reload_atom>::with<caf::ok_atom>,
  caf::replies_to<status_atom>::with<source_status>>;

struct config_store_spec {
  std::string source_path;
  std::shared_ptr<source_of_truth> truth;
  /// Checks beyond the schema (e.g. what memcached would misread); returns
  /// the problems, located with source_document::locate.
  std::function<std::vector<located_error>(const source_document&)> validate;
  caf::timespan poll_interval = std::chrono::milliseconds(250);
};

config_store_actor spawn_config_store(caf::actor_system& sys,
                                      config_store_spec spec);

/// Loads `path` and applies `validate`: the document, or its errors.
source_load_result load_and_validate(
  const std::string& path,
  const std::function<std::vector<located_error>(const source_document&)>&
    validate);

} // namespace mcfg
