#pragma once
// A minimal callback module for writer tests: keys under "cfg/" with integer
// values, rendered as sorted "key=value" lines. A key "cfg/refuse" makes the
// state unrenderable, as a source memcached would misread.
#include <map>
#include <string>

#include "memcached_cfg/actors/writer_module.hpp"

namespace mcfg::test {

class kv_module final : public writer_module {
public:
  void init(const snapshot& source) override {
    state_.clear();
    for (auto& [key, value] : source)
      if (filter_event(key))
        state_[key] = as_int(value);
  }

  bool filter_event(const std::string& key) const override {
    return key.rfind("cfg/", 0) == 0;
  }

  bool handle_event(const config_change& change) override {
    if (change.removed)
      return state_.erase(change.key) > 0;
    auto value = as_int(change.value);
    auto [i, added] = state_.emplace(change.key, value);
    if (!added && i->second == value)
      return false;
    i->second = value;
    return true;
  }

  rendering produce() const override {
    if (state_.count("cfg/refuse") > 0)
      return rendering::refused("cfg/refuse is set");
    std::string out;
    for (auto& [key, value] : state_)
      out += key + "=" + std::to_string(value) + "\n";
    return rendering::content(std::move(out));
  }

  std::map<std::string, std::string> format_status() const override {
    return {{"keys", std::to_string(state_.size())}};
  }

private:
  static int64_t as_int(const config_value& x) {
    auto ptr = caf::get_if<int64_t>(&x);
    return ptr ? *ptr : 0;
  }

  std::map<std::string, int64_t> state_;
};

/// Renders a snapshot as kv_module would: the expected file content.
inline std::string render_kv(const snapshot& source) {
  kv_module m;
  m.init(source);
  return m.produce().text();
}

} // namespace mcfg::test
