#pragma once
// status_board: where a node's writers and its refresher publish their state
// as it changes, for the control API and the cluster registration to read
// without asking them (ARCHITECTURE.md §5). A writer stuck in a system call
// holds up no reader: its last publication stays readable, and the time it
// has been stuck keeps growing (entries are aged to the reader's clock).
//
// Thread-safe: publishers are actors on any scheduler thread, readers the
// control actor and the registration's thread. Each entry is an immutable
// snapshot swapped in under one short lock, so a reader copies pointers,
// never whole statuses, while holding it.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>

#include "memcached_cfg/messages/node_status.hpp"

namespace mcfg {

class status_board {
public:
  using time_point = caf::actor_clock::time_point;

  /// One slot per file, in node.yaml order.
  explicit status_board(std::vector<std::string> files);

  /// File `index`'s writer, at `at` (its clock), is as `st` says (but for
  /// `st.path`: reads give the board's own path for the slot).
  void publish_file(size_t index, writer_status st, time_point at);

  /// The refresh of `st.path`, at `at`, is as `st` says (files without a
  /// refresh never publish one).
  void publish_refresh(refresh_status st, time_point at);

  /// Every file's and refresh's latest publication as of `now`: durations
  /// grown (or, for a retry, shrunk) by the time since it was published.
  /// A file never published yet has only its path, and `published` false;
  /// refreshes are those published, by path.
  struct snapshot {
    std::vector<writer_status> files;
    std::vector<bool> published;
    std::vector<refresh_status> refreshes;
    /// Bumped at every publication: equal numbers, equal content.
    uint64_t generation = 0;
  };
  snapshot read(time_point now) const;

  /// Bumped at every publication.
  uint64_t generation() const;

  size_t file_count() const {
    return files_.size();
  }

private:
  template <class T>
  struct entry {
    std::shared_ptr<const T> value;
    time_point at;
  };

  mutable std::mutex mtx_;
  std::vector<std::string> paths_;
  std::vector<entry<writer_status>> files_;
  std::map<std::string, entry<refresh_status>> refreshes_;
  uint64_t generation_ = 0;
};

/// `st` as it stands `elapsed` after it was taken: every running duration
/// (time since a change or write, failing, an attempt or check running)
/// grown by it, a retry's wait shrunk (never below zero); negative ones
/// ("none") stay.
writer_status aged(writer_status st, caf::timespan elapsed);
refresh_status aged(refresh_status st, caf::timespan elapsed);

} // namespace mcfg
