#pragma once
// The current source of truth, shared by the file_store (which publishes
// accepted versions) and the writers (which subscribe and read). It outlives
// the actors, so a restarted file_store or writer finds it as it was.
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <caf/actor_addr.hpp>

#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/messages/subscriber.hpp"

namespace mcfg {

class source_of_truth : public std::enable_shared_from_this<source_of_truth> {
public:
  /// Nothing accepted yet: version 0, empty.
  static std::shared_ptr<source_of_truth> make();
  /// `initial` (e.g. the source as loaded at start-up) is version 1.
  static std::shared_ptr<source_of_truth> make(snapshot initial);

  /// The current snapshot and its version, read together.
  versioned_snapshot read() const;
  uint64_t version() const;
  size_t subscriber_count() const;

  /// Adds a subscriber until it terminates. Subscribing and publishing take
  /// the same lock, so a subscriber that then reads sees every version: in
  /// the snapshot, as an update, or both (it drops updates the snapshot's
  /// version already holds).
  void subscribe(const update_subscriber& who);

  /// When `next` differs from the current snapshot: makes it the next
  /// version and sends each subscriber one config_update with every change,
  /// in key order. Returns that update; nothing is sent and the version
  /// stays when nothing changed (the update then has no changes).
  config_update publish(snapshot next);

private:
  source_of_truth(snapshot initial, uint64_t version);
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
  /// In subscription order (ids ascending); a writer gone has its handle
  /// cleared, and the list is compacted once half of it is gone, so that
  /// ten thousand writers leaving (a stop, a restart storm) cost linear time.
  std::vector<subscriber> subscribers_;
  size_t gone_ = 0;
};

} // namespace mcfg
