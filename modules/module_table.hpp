#pragma once
// The module table: every callback module a node can render a file with, by
// the name node.yaml gives it. The node looks modules up here and knows
// nothing else about them; adding a module is its own file plus one line in
// module_table.cpp.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "memcached_cfg/actors/writer_module.hpp"
#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/modules/key_problem.hpp"

namespace mcfg {

struct module_entry {
  /// What node.yaml's `module:` says.
  std::string_view name;
  /// A fresh module, for each writer incarnation.
  std::unique_ptr<writer_module> (*make)();
  /// The source's rules for this module's file: the first problem with the
  /// whole source, or nothing. Run before a version is published.
  std::optional<key_problem> (*validate)(const snapshot& source);
  /// The file's content with every secret masked, for `mcfgd --check`;
  /// nullptr when the file holds no secret.
  std::string (*mask)(const std::string& content);
  /// Mode bits the file must not have beyond the write bits no file may have
  /// (e.g. world read for passwords), and why, for node.yaml's error.
  mode_t forbidden_mode;
  std::string_view forbidden_mode_reason;
};

/// Every module, in the order `module_names` lists them.
const std::vector<module_entry>& module_table();

/// The module named `name`, or nullptr.
const module_entry* find_module(std::string_view name);

/// "memcached_passwords, memcached_permissions": for error messages.
std::string module_names();

/// What `mcfgd --check` prints for a file rendered by `module` from
/// `source`: its content with secrets masked, or why it would be refused.
std::string preview(const module_entry& module, const snapshot& source);

} // namespace mcfg
