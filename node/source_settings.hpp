#pragma once
// What node.yaml says about the source, applied: the checks every version
// of the source must pass for the configured files, and the etcd client
// settings of source.etcd. Shared by mcfgd (node_tree) and mcfgctl's cluster
// commands (import validates exactly as a node does); no actors here.
#include <functional>
#include <string>
#include <vector>

#include "memcached_cfg/etcd/client.hpp"
#include "memcached_cfg/messages/result.hpp"
#include "memcached_cfg/modules/module_table.hpp"
#include "memcached_cfg/node/node_config.hpp"
#include "memcached_cfg/source/located_error.hpp"
#include "memcached_cfg/source/source_document.hpp"

namespace mcfg {

/// Everything the configured files' modules refuse in `doc`, each located at
/// its key's line and column; and no users at all, unless node.yaml allows
/// it. Run on every version before it is published.
std::vector<located_error> validate_for_files(const node_config& cfg,
                                              const source_document& doc);

/// validate_for_files bound to what it needs of `cfg` (whether empty users
/// are allowed, and each module once): as cheap to copy and to run at
/// 10,000 files as at one.
using source_validator
  = std::function<std::vector<located_error>(const source_document&)>;
source_validator files_validator(const node_config& cfg);

/// The same for a list of modules (each problem once).
std::vector<located_error>
validate_for_modules(const std::vector<const module_entry*>& modules,
                     const source_document& doc);

/// The client settings node.yaml's source.etcd gives (the password read
/// from its file, which only its owner may read, one line), or why they
/// cannot be had (naming the file, never its content).
result<etcd::client_options> etcd_client_options(const etcd_source_config& cfg);

} // namespace mcfg
