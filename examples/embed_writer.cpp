// Embedding memcached_cfg with your own callback module: a writer that keeps
// a "motd" file in step with the key `motd/text`. Run it with a path:
//   build/examples/embed_writer /tmp/motd
#include <iostream>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "memcached_cfg/actors/memcached_cfg.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/messages/message_types.hpp"

namespace {

std::string text_of(const mcfg::config_value& x) {
  auto str = caf::get_if<std::string>(&x);
  return str ? *str : std::string{};
}

} // namespace

// The callback module: plain code, no actor in it.
class motd_module : public mcfg::writer_module {
public:
  void init(const mcfg::snapshot& source) override {
    auto i = source.find("motd/text");
    text_ = i == source.end() ? "" : text_of(i->second);
  }
  bool filter_event(const std::string& key) const override {
    return key == "motd/text";
  }
  bool handle_event(const mcfg::config_change& change) override {
    auto text = change.removed ? "" : text_of(change.value);
    if (text == text_)
      return false; // unchanged: no write
    text_ = std::move(text);
    return true;
  }
  mcfg::rendering produce() const override {
    if (text_.find('\0') != std::string::npos)
      return mcfg::rendering::refused("motd contains a NUL byte");
    return mcfg::rendering::content(text_ + "\n");
  }
  std::map<std::string, std::string> format_status() const override {
    return {{"length", std::to_string(text_.size())}};
  }

private:
  std::string text_;
};

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: embed_writer PATH\n";
    return 2;
  }
  caf::actor_system_config cfg;
  mcfg::add_message_types(cfg);
  caf::actor_system sys{cfg};

  mcfg::writer_spec spec;
  spec.settings.path = argv[1]; // retry 100ms, deadline 10s, mode 0600
  spec.make_module = [] { return std::make_unique<motd_module>(); };
  spec.read_snapshot = [] {
    return mcfg::versioned_snapshot{
      1, {{"motd/text", mcfg::config_value{"hello"}}}};
  };
  spec.refresh = [](uint64_t version) {
    std::cout << "refresh: tell the reader to re-read version " << version
              << "\n";
  };
  auto writer = mcfg::spawn_memcached_cfg(sys, std::move(spec));

  caf::scoped_actor self{sys};
  // Version 2 of the source: every changed key in one update.
  self->send(writer, mcfg::change_atom::value,
             mcfg::config_update{
               2, {{"motd/text", mcfg::config_value{"good bye"}, false}}});
  // sync answers once the file holds the latest version.
  int rc = 0;
  self->request(writer, caf::infinite, mcfg::sync_atom::value)
    .receive([](caf::ok_atom) { std::cout << "in step\n"; },
             [&](caf::error& err) {
               std::cerr << mcfg::describe(err) << '\n';
               rc = 1;
             });
  self->send_exit(writer, caf::exit_reason::user_shutdown);
  return rc;
}
