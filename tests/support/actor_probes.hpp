#pragma once
// Small actors that let a test talk to actors under the test_coordinator
// without blocking: a request whose answer lands in a shared slot, and a
// monitor that records the down reason. Nothing happens until run().
#include <memory>
#include <optional>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

namespace mcfg::test {

template <class T>
struct reply {
  std::optional<T> value;
  std::optional<caf::error> error;

  bool answered() const {
    return value.has_value() || error.has_value();
  }
};

/// Sends `xs...` to `dest` as a request; the answer lands in the result.
template <class T, class Handle, class... Ts>
std::shared_ptr<reply<T>> ask(caf::actor_system& sys, const Handle& dest,
                              Ts... xs) {
  auto out = std::make_shared<reply<T>>();
  sys.spawn([=](caf::event_based_actor* self) {
    self->request(dest, caf::infinite, xs...)
      .then([=](T& x) { out->value = std::move(x); },
            [=](caf::error& e) { out->error = std::move(e); });
  });
  return out;
}

/// Monitors an actor; `reason` holds its exit reason once it is down.
struct watcher {
  std::shared_ptr<std::optional<caf::error>> reason
    = std::make_shared<std::optional<caf::error>>();
  caf::actor handle; // keeps the monitoring actor alive

  bool down() const {
    return reason->has_value();
  }
};

template <class Handle>
watcher watch(caf::actor_system& sys, const Handle& target) {
  watcher w;
  auto slot = w.reason;
  auto dest = caf::actor_cast<caf::actor>(target);
  w.handle = sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    self->monitor(dest);
    self->set_down_handler([=](caf::down_msg& msg) { *slot = msg.reason; });
    return {[](caf::ok_atom) {}};
  });
  return w;
}

} // namespace mcfg::test
