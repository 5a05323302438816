#pragma once
// The current source of truth, shared by the config_store (which publishes
// accepted edits) and the writers (which subscribe and read). It outlives the
// actors, so a restarted config_store or writer finds it as it was.
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <caf/actor.hpp>

#include "actors/memcached_cfg.hpp"
#include "messages/config_change.hpp"

namespace mcfg {

class source_of_truth : public std::enable_shared_from_this<source_of_truth> {
public:
  static std::shared_ptr<source_of_truth> make(snapshot initial = {});

  snapshot read() const;
  uint64_t version() const;
  size_t subscriber_count() const;

  /// Adds a subscriber until it terminates. Subscribing and publishing take
  /// the same lock, so a subscriber that then reads sees every change: in the
  /// snapshot, as an event, or both (a repeated change is a no-op).
  void subscribe(const memcached_cfg_actor& who);

  /// Replaces the snapshot and sends each subscriber the changes, in key
  /// order. Returns them; nothing is sent when nothing changed.
  std::vector<config_change> publish(snapshot next);

private:
  explicit source_of_truth(snapshot initial);
  void unsubscribe(uint64_t id);

  struct subscriber {
    uint64_t id;
    /// Weak: the source must not keep a writer (which holds the source) alive.
    caf::actor_addr handle;
  };

  mutable std::mutex mtx_;
  snapshot current_;
  uint64_t version_ = 0;
  uint64_t next_id_ = 0;
  std::vector<subscriber> subscribers_;
};

} // namespace mcfg
