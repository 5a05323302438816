#pragma once
// file_watcher: tells when the source file may have changed, with inotify on
// the directory that holds it (ARCHITECTURE.md §5), on a thread of its own so
// no scheduler worker ever blocks. It only reports; file_store decides when
// the file has settled and reads it. Plain code, no actor.
//
// The thread never ends silently: when inotify fails (a poll or read error,
// the descriptor reported broken, an exception) it says why through
// `on_stop` and ends, so its owner can say so and watch another way.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

struct pollfd; // <poll.h>

namespace mcfg {

namespace detail {
class watch_set;
} // namespace detail

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

  /// Called on the watcher's thread, once, when the thread ends other than
  /// by the destructor, with why (the failed call and the system's reason).
  /// No event is reported after it, and quiet_since is false from then on.
  using stop_callback = std::function<void(const std::string& why)>;

  /// Stands for poll(2) on the watcher's thread: tests make it fail.
  using poll_function = std::function<int(::pollfd*, unsigned long, int)>;

  struct options {
    stop_callback on_stop;
    /// Empty: ::poll.
    poll_function poll;
  };

  /// Watches `path`'s directory (and, when `path` is a symlink, its
  /// target's) from before it returns, so an edit made after it returns is
  /// reported. Null when inotify is unavailable; `why_not` then says why.
  static std::unique_ptr<file_watcher> start(const std::string& path,
                                             callback cb, std::string& why_not,
                                             options opts = {});

  /// Stops the thread and waits for it (it wakes at once).
  ~file_watcher();

  file_watcher(const file_watcher&) = delete;
  file_watcher& operator=(const file_watcher&) = delete;

  /// Whether nothing has happened in the watched directories since the
  /// callback that reported `seen` events: no event waits in the kernel's
  /// queue, none is being handled, none was seen since. The kernel queues an
  /// event within the system call that causes it, so a file read before
  /// this says true was not modified after that callback's events.
  bool quiet_since(uint64_t seen) const;

private:
  file_watcher(int inotify_fd, int stop_fd);
  void run(detail::watch_set& watches, const callback& cb, const options& opts);
  /// Watches until asked to stop (empty) or inotify fails (why).
  std::string watch(detail::watch_set& watches, const callback& cb,
                    const poll_function& poll);
  /// Reads one batch from the kernel and reports it; why it failed, if so.
  std::string report_batch(detail::watch_set& watches, const callback& cb);

  int inotify_fd_;
  int stop_fd_;
  /// Held while a batch is read from the kernel and reported.
  mutable std::mutex batch_mtx_;
  uint64_t seen_ = 0;
  /// Set (under batch_mtx_) once the thread stopped watching on a failure.
  bool failed_ = false;
  std::thread thread_;
};

} // namespace mcfg
