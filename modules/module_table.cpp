#include "memcached_cfg/modules/module_table.hpp"

#include "memcached_cfg/modules/memcached_passwords.hpp"
#include "memcached_cfg/modules/memcached_permissions.hpp"

namespace mcfg {

const std::vector<module_entry>& module_table() {
  static const std::vector<module_entry> table{
    {"memcached_passwords", make_memcached_passwords,
     validate_memcached_passwords, mask_memcached_passwords, 0004,
     "lets anyone read the passwords; use 0600, or 0640 for a group "
     "memcached is in"},
    {"memcached_permissions", make_memcached_permissions,
     validate_memcached_permissions, nullptr, 0, ""},
  };
  return table;
}

const module_entry* find_module(std::string_view name) {
  for (auto& entry : module_table())
    if (entry.name == name)
      return &entry;
  return nullptr;
}

std::string module_names() {
  std::string out;
  for (auto& entry : module_table()) {
    if (!out.empty())
      out += ", ";
    out += entry.name;
  }
  return out;
}

std::string preview(const module_entry& module, const snapshot& source) {
  auto instance = module.make();
  instance->init(source);
  auto out = instance->produce();
  switch (out.what()) {
    case rendering::kind::refused:
      return "(refused: " + out.text() + ")\n";
    case rendering::kind::nothing:
      return "(nothing to write)\n";
    case rendering::kind::content:
      break;
  }
  return module.mask ? module.mask(out.text()) : out.text();
}

} // namespace mcfg
