#pragma once
// file_watcher: tells when the source file may have changed, with inotify on
// the directory that holds it (ARCHITECTURE.md §5), on a thread of its own so
// no scheduler worker ever blocks. It only reports; config_store decides when
// the file has settled and reads it. Plain code, no actor.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace mcfg {

/// What the latest event of a batch says about the source.
enum class file_event_kind : uint8_t {
  /// Written to, truncated, created, deleted, renamed away, re-permissioned:
  /// a save may still be under way.
  modified = 0,
  /// Renamed into place, or closed by a writer: a save just ended.
  complete = 1,
};

class file_watcher {
public:
  /// Called on the watcher's thread once per batch of events about the
  /// source, with the kind of the batch's last event and the number of
  /// events seen so far.
  using callback = std::function<void(file_event_kind, uint64_t seen)>;

  /// Starts watching `path`'s directory (and, when `path` is a symlink, its
  /// target's). Null when inotify is unavailable; `why_not` then says why.
  static std::unique_ptr<file_watcher> start(const std::string& path,
                                             callback cb,
                                             std::string& why_not);

  /// Stops the thread and waits for it (it wakes at once).
  ~file_watcher();

  file_watcher(const file_watcher&) = delete;
  file_watcher& operator=(const file_watcher&) = delete;

  /// Events about the source seen so far, including those whose callback is
  /// still to come: a reader compares it with the `seen` of the last
  /// callback it handled to know whether another one is on its way.
  uint64_t seen() const {
    return seen_->load();
  }

private:
  file_watcher(int inotify_fd, int stop_fd);
  void run(std::string path, callback cb);

  int inotify_fd_;
  int stop_fd_;
  std::shared_ptr<std::atomic<uint64_t>> seen_;
  std::thread thread_;
};

} // namespace mcfg
