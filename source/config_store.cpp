#include "source/config_store.hpp"

#include <fstream>
#include <optional>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/errors.hpp"
#include "messages/log.hpp"

namespace mcfg {

source_load_result load_and_validate(
  const std::string& path,
  const std::function<std::vector<located_error>(const source_document&)>&
    validate) {
  auto result = load_source_file(path);
  if (result.ok() && validate) {
    auto problems = validate(*result.value);
    if (!problems.empty()) {
      result.value.reset();
      result.errors = std::move(problems);
    }
  }
  return result;
}

namespace {

/// poll(timer_id): look at the source file again (self-sent).
using poll_atom = caf::atom_constant<caf::atom("poll")>;

using store_actor = config_store_actor::extend<
  caf::reacts_to<poll_atom, uint64_t>>;

struct store_state {
  static inline const char* name = "config_store";
  config_store_spec spec;
  std::string log_name;
  /// The bytes of the last look at the file, to skip unchanged polls.
  std::optional<std::string> last_bytes;
  uint64_t poll_timer = 0;
  source_status status;
};

using store_self = store_actor::stateful_pointer<store_state>;

std::optional<std::string> read_bytes(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Looks at the source file; loads and publishes it when its bytes changed.
/// Returns the refusal, if the edit was refused.
std::optional<std::string> look(store_self self, bool force) {
  auto& st = self->state;
  auto bytes = read_bytes(st.spec.source_path);
  if (!force && bytes && bytes == st.last_bytes) {
    if (st.status.last_error.empty())
      return std::nullopt;
    return st.status.last_error;
  }
  st.last_bytes = bytes;
  auto result = load_and_validate(st.spec.source_path, st.spec.validate);
  if (!result.ok()) {
    auto text = to_string(result.errors);
    if (text != st.status.last_error) {
      ++st.status.refused_edits;
      log::error(st.log_name, "edit refused, keeping the last good state: "
                                + text);
    }
    st.status.last_error = text;
    return text;
  }
  st.status.last_error.clear();
  auto changes = st.spec.truth->publish(std::move(result.value->values));
  st.status.version = st.spec.truth->version();
  if (!changes.empty())
    log::info(st.log_name, "source changed: " + std::to_string(changes.size())
                             + " keys, now version "
                             + std::to_string(st.status.version));
  return std::nullopt;
}

void arm_poll(store_self self) {
  auto& st = self->state;
  self->delayed_send(self, st.spec.poll_interval, poll_atom::value,
                     ++st.poll_timer);
}

store_actor::behavior_type config_store(store_self self,
                                        config_store_spec spec) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.log_name = "config_store " + st.spec.source_path;
  st.status.path = st.spec.source_path;
  look(self, true);
  arm_poll(self);
  return {
    [=](poll_atom, uint64_t id) {
      if (id != self->state.poll_timer)
        return;
      look(self, false);
      arm_poll(self);
    },
    [=](reload_atom) -> caf::result<caf::ok_atom> {
      if (auto refusal = look(self, false))
        return caf::make_error(errc::invalid_source, *refusal);
      return caf::ok_atom::value;
    },
    [=](status_atom) { return self->state.status; },
  };
}

} // namespace

config_store_actor spawn_config_store(caf::actor_system& sys,
                                      config_store_spec spec) {
  return sys.spawn(config_store, std::move(spec));
}

} // namespace mcfg
