#include "memcached_cfg/node/source_settings.hpp"
#include "memcached_cfg/node/private_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <unistd.h>

namespace mcfg {

namespace {

bool has_users(const snapshot& source) {
  auto first = source.lower_bound(std::string{users_prefix});
  return first != source.end()
         && first->first.compare(0, users_prefix.size(), users_prefix) == 0;
}

} // namespace

source_validator files_validator(const node_config& cfg) {
  // Each module once: ten thousand files of one module validate each
  // version once, not ten thousand times.
  std::vector<const module_entry*> modules;
  for (auto& file : cfg.files)
    if (std::find(modules.begin(), modules.end(), file.module) == modules.end())
      modules.push_back(file.module);
  return
    [modules, allow_empty = cfg.allow_empty_users](const source_document& doc) {
      std::vector<located_error> out;
      if (!allow_empty && !has_users(doc.values))
        out.push_back(doc.locate(
          "users", "no users: memcached would let nobody in (1.6.18) or reject "
                   "the empty auth file (1.6.32 and later); set "
                   "`allow_empty_users: true` in node.yaml if that is meant"));
      auto more = validate_for_modules(modules, doc);
      out.insert(out.end(), more.begin(), more.end());
      return out;
    };
}

std::vector<located_error> validate_for_files(const node_config& cfg,
                                              const source_document& doc) {
  return files_validator(cfg)(doc);
}

std::vector<located_error>
validate_for_modules(const std::vector<const module_entry*>& modules,
                     const source_document& doc) {
  std::vector<located_error> out;
  for (auto* module : modules)
    if (auto problem = module->validate(doc.values)) {
      auto err = doc.locate(problem->key, problem->message);
      auto same = [&](const located_error& x) {
        return x.to_string() == err.to_string();
      };
      if (std::none_of(out.begin(), out.end(), same))
        out.push_back(std::move(err));
    }
  return out;
}

result<etcd::client_options>
etcd_client_options(const etcd_source_config& cfg) {
  etcd::client_options opts;
  opts.endpoints = cfg.endpoints;
  opts.username = cfg.username;
  if (!cfg.password_file.empty()) {
    auto pw = read_private_file(cfg.password_file, "etcd password file");
    if (!pw)
      return pw.error();
    auto& text = *pw;
    // One line; the newline an editor adds is not part of it.
    if (!text.empty() && text.back() == '\n')
      text.pop_back();
    if (text.empty() || text.find_first_of("\r\n") != std::string::npos)
      return fail("etcd password file " + cfg.password_file
                  + ": expected one line holding the password");
    opts.password = std::move(text);
  }
  if (cfg.tls) {
    // A TLS file that cannot be read fails every connection alike, which
    // the client cannot tell from an unreachable member: found here, it is
    // bad configuration rather than a reason to wait for etcd.
    for (auto& [what, path] : {std::pair{"CA", cfg.tls->ca},
                               {"certificate", cfg.tls->cert},
                               {"key", cfg.tls->key}})
      if (!path.empty() && ::access(path.c_str(), R_OK) != 0)
        return fail(std::string{"etcd TLS "} + what + " file " + path + ": "
                    + std::strerror(errno));
  }
  opts.tls = cfg.tls;
  opts.stale_after = cfg.stale_after;
  return opts;
}

} // namespace mcfg
