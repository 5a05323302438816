#pragma once
// Wiring mcfgd's supervision tree (ARCHITECTURE.md §5) from a validated
// node.yaml: which module each file uses, how the source is validated for
// them, and the root supervisor's children in start order:
//   config_store, refresher, one memcached_cfg writer per file.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/memcached_cfg.hpp"
#include "source/source_document.hpp"
#include "source/source_of_truth.hpp"
#include "node/node_config.hpp"
#include "supervision/child_spec.hpp"

namespace mcfg {

/// Registry names of the node's children.
constexpr auto store_child_id = caf::atom("store");
constexpr auto refresher_child_id = caf::atom("refresher");
/// Writers are named file1, file2, ... in node.yaml order.
sup::child_id writer_child_id(size_t index);

/// Everything the configured files' modules refuse in `doc`, each located at
/// its key's line and column.
std::vector<located_error> validate_for_files(const node_config& cfg,
                                              const source_document& doc);

/// The root supervisor's children, in start order.
std::vector<sup::child_spec> node_children(
  const node_config& cfg, std::shared_ptr<source_of_truth> truth);

/// The root supervisor's flags from node.yaml.
sup::supervisor_flags root_flags(const node_config& cfg);

} // namespace mcfg
