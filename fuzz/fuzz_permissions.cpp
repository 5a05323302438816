// libFuzzer target: the memcached_permissions module and its validation, on
// sources loaded by parse_source.
//
// Input: a source YAML, optionally followed by a line `---` and a second
// source (the same file after an edit).
//
// Properties, for each source that loads:
// - validate_memcached_permissions reports a problem exactly when the module
//   (init + produce) refuses, and format_status() has `refused` exactly
//   then (as the header promises); produce() never says "nothing";
// - content is one JSON document and a newline; nlohmann parses it to
//   {"version": 1, "users": {name: {"roles": [...]}}} with exactly the
//   source's users, each with its roles sorted and without duplicates, and
//   dumping it again gives the same bytes (deterministic rendering);
// - no password reaches the content, the refusal or the status: with every
//   password replaced by a marker that occurs nowhere else, everything is
//   byte for byte the same and the marker is nowhere;
// - after an edit: init(before) then handle_event for each change of
//   diff(before, after) renders exactly what init(after) renders, and a
//   change for which handle_event says "unchanged" leaves the rendering as
//   it was.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.hpp"
#include "memcached_cfg/modules/memcached_permissions.hpp"

namespace {

using mcfg::rendering;

bool same(const rendering& x, const rendering& y) {
  return x.what() == y.what() && x.text() == y.text();
}

rendering render(const mcfg::snapshot& s) {
  mcfg::memcached_permissions m;
  m.init(s);
  return m.produce();
}

/// name -> roles (sorted, unique) as the source says, read without the
/// module.
std::map<std::string, std::vector<std::string>>
roles_of(const mcfg::snapshot& s) {
  std::map<std::string, std::vector<std::string>> out;
  for (auto& [key, value] : s) {
    auto& roles = out[key.substr(mcfg::users_prefix.size())];
    auto dict = caf::get_if<mcfg::config_value::dictionary>(&value.get_data());
    FUZZ_CHECK(dict != nullptr); // parse_source guarantees it
    auto i = dict->find("roles");
    FUZZ_CHECK(i != dict->end());
    auto list = caf::get_if<mcfg::config_value::list>(&i->second.get_data());
    FUZZ_CHECK(list != nullptr);
    for (auto& r : *list) {
      auto str = caf::get_if<std::string>(&r.get_data());
      FUZZ_CHECK(str != nullptr);
      roles.push_back(*str);
    }
    std::sort(roles.begin(), roles.end());
    roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
  }
  return out;
}

void check_content(const std::string& content, const mcfg::snapshot& s) {
  FUZZ_CHECK(!content.empty() && content.back() == '\n');
  auto body = content.substr(0, content.size() - 1);
  FUZZ_CHECK(body.find('\n') == std::string::npos);
  auto doc = nlohmann::ordered_json::parse(body, nullptr, false);
  FUZZ_CHECK(!doc.is_discarded());
  FUZZ_CHECK(doc.is_object() && doc.size() == 2);
  FUZZ_CHECK(doc.begin().key() == "version");
  FUZZ_CHECK(doc["version"] == mcfg::memcached_permissions_version);
  FUZZ_CHECK(doc["users"].is_object());
  std::map<std::string, std::vector<std::string>> read;
  for (auto& [name, user] : doc["users"].items()) {
    FUZZ_CHECK(user.is_object() && user.size() == 1);
    FUZZ_CHECK(user.contains("roles") && user["roles"].is_array());
    std::vector<std::string> roles;
    for (auto& r : user["roles"]) {
      FUZZ_CHECK(r.is_string());
      roles.push_back(r.get<std::string>());
    }
    FUZZ_CHECK(std::is_sorted(roles.begin(), roles.end()));
    FUZZ_CHECK(std::adjacent_find(roles.begin(), roles.end()) == roles.end());
    FUZZ_CHECK(read.emplace(name, std::move(roles)).second);
  }
  FUZZ_CHECK(read == roles_of(s));
  FUZZ_CHECK(doc.dump() == body);
}

/// A string that occurs in no key, role or password of `s`.
std::string marker_for(const mcfg::snapshot& s) {
  for (int n = 0;; ++n) {
    auto marker = "\x01pw-marker-" + std::to_string(n) + "\x02";
    bool clash = false;
    for (auto& [key, value] : s) {
      clash = clash || key.find(marker) != std::string::npos;
      for (auto& [name, roles] : roles_of({{key, value}}))
        for (auto& r : roles)
          clash = clash || r.find(marker) != std::string::npos;
    }
    if (!clash)
      return marker;
  }
}

mcfg::snapshot with_marker_passwords(const mcfg::snapshot& s,
                                     const std::string& marker) {
  auto out = s;
  for (auto& [key, value] : out) {
    auto dict = caf::get_if<mcfg::config_value::dictionary>(&value.get_data());
    if (dict == nullptr)
      continue;
    auto i = dict->find("password");
    if (i != dict->end())
      i->second = mcfg::config_value{marker};
  }
  return out;
}

bool mentions(const std::map<std::string, std::string>& status,
              const std::string& s) {
  for (auto& [k, v] : status)
    if (k.find(s) != std::string::npos || v.find(s) != std::string::npos)
      return true;
  return false;
}

void check_source(const mcfg::snapshot& s) {
  auto problem = mcfg::validate_memcached_permissions(s);
  mcfg::memcached_permissions m;
  m.init(s);
  auto out = m.produce();
  auto status = m.format_status();
  FUZZ_CHECK(out.what() != rendering::kind::nothing);
  FUZZ_CHECK((out.what() == rendering::kind::refused) == problem.has_value());
  FUZZ_CHECK(status["users"] == std::to_string(s.size()));
  FUZZ_CHECK(status.count("refused") == (problem ? 1u : 0u));
  if (problem) {
    FUZZ_CHECK(!problem->key.empty() && !problem->message.empty());
    FUZZ_CHECK(!out.text().empty());
  } else {
    check_content(out.text(), s);
  }

  // No password anywhere: replaced by a marker, nothing changes and the
  // marker is nowhere.
  auto marker = marker_for(s);
  auto other = with_marker_passwords(s, marker);
  FUZZ_CHECK(mcfg::validate_memcached_permissions(other) == problem);
  mcfg::memcached_permissions o;
  o.init(other);
  auto other_out = o.produce();
  FUZZ_CHECK(same(other_out, out));
  FUZZ_CHECK(other_out.text().find(marker) == std::string::npos);
  auto other_status = o.format_status();
  FUZZ_CHECK(other_status == status);
  FUZZ_CHECK(!mentions(other_status, marker));
}

void check_edit(const mcfg::snapshot& before, const mcfg::snapshot& after) {
  mcfg::memcached_permissions m;
  m.init(before);
  auto current = m.produce();
  for (auto& change : mcfg::diff(before, after)) {
    FUZZ_CHECK(m.filter_event(change.key));
    bool changed = m.handle_event(change);
    auto next = m.produce();
    if (!changed)
      FUZZ_CHECK(same(next, current));
    current = std::move(next);
  }
  FUZZ_CHECK(same(current, render(after)));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mcfg_fuzz::run_source_and_edit(data, size, check_source, check_edit);
}
