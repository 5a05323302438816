#include "memcached_cfg/source/file_watcher.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <exception>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mcfg {

namespace {

constexpr uint32_t dir_events = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO
                                | IN_MOVED_FROM | IN_CREATE | IN_DELETE
                                | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF
                                | IN_ONLYDIR;

/// How often a vanished directory is looked for again.
constexpr int rewatch_ms = 250;

std::pair<std::string, std::string> split_path(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos)
    return {".", path};
  return {pos == 0 ? "/" : path.substr(0, pos), path.substr(pos + 1)};
}

bool is_symlink(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

} // namespace

namespace detail {

/// One watched directory and the name in it that matters (empty: any).
struct watch {
  int wd = -1;
  std::string dir;
  std::string name;

  bool matches(const inotify_event& ev) const {
    return ev.wd == wd
           && (name.empty() || (ev.len > 0 && name == ev.name)
               || (ev.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)));
  }
};

/// The watches for one source path: its directory, and its target's when
/// the path is a symlink (an edit of the target then happens there).
class watch_set {
public:
  watch_set(int fd, const std::string& path) : fd_(fd), path_(path) {
    std::tie(source_.dir, source_.name) = split_path(path);
  }

  bool complete() const {
    return source_.wd >= 0;
  }

  /// Adds what is missing; true when a watch was re-established (what
  /// happened meanwhile is unknown: worth a look).
  bool refresh() {
    bool restored = false;
    if (source_.wd < 0) {
      source_.wd = ::inotify_add_watch(fd_, source_.dir.c_str(), dir_events);
      restored = source_.wd >= 0 && tried_;
      tried_ = true;
    }
    // Through a symlink, any name in its directory may re-point it (a
    // Kubernetes ConfigMap swaps a `..data` link).
    bool link = is_symlink(path_);
    source_.name = link ? std::string{} : split_path(path_).second;
    std::string target_dir;
    if (link) {
      char buf[PATH_MAX];
      if (::realpath(path_.c_str(), buf) != nullptr) {
        auto [dir, name] = split_path(buf);
        target_dir = dir;
        target_.name = name;
      }
    }
    if (target_dir != target_.dir || target_.wd < 0) {
      if (target_.wd >= 0)
        ::inotify_rm_watch(fd_, target_.wd);
      target_.wd = -1;
      target_.dir = target_dir;
      if (!target_dir.empty() && target_dir != source_.dir)
        target_.wd = ::inotify_add_watch(fd_, target_dir.c_str(), dir_events);
      // The same directory by another path: inotify hands out the same
      // watch, which the source's (any name, through a link) already covers.
      if (target_.wd == source_.wd)
        target_.wd = -1;
    }
    return restored;
  }

  /// Whether `ev` is about the source; forgets watches that ended.
  bool relevant(const inotify_event& ev) {
    if (ev.mask & IN_Q_OVERFLOW)
      return true;
    bool hit = false;
    for (auto* w : {&source_, &target_}) {
      if (!w->matches(ev))
        continue;
      hit = true;
      // The directory went away or moved: its path is to be watched anew.
      if (ev.mask & (IN_IGNORED | IN_MOVE_SELF)) {
        if (w->wd >= 0 && !(ev.mask & IN_IGNORED))
          ::inotify_rm_watch(fd_, w->wd);
        w->wd = -1;
      }
    }
    return hit;
  }

private:
  int fd_;
  std::string path_;
  watch source_;
  watch target_;
  /// Whether the source's directory was tried once (at start).
  bool tried_ = false;
};

} // namespace detail

std::unique_ptr<file_watcher> file_watcher::start(const std::string& path,
                                                  callback cb,
                                                  std::string& why_not,
                                                  options opts) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    why_not = std::string{"inotify_init1 failed: "} + std::strerror(errno);
    return nullptr;
  }
  int stop = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop < 0) {
    why_not = std::string{"eventfd failed: "} + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  std::unique_ptr<file_watcher> w{new file_watcher(fd, stop)};
  auto watches = std::make_shared<detail::watch_set>(fd, path);
  watches->refresh();
  w->thread_ = std::thread{
    [p = w.get(), watches, cb = std::move(cb), opts = std::move(opts)] {
      p->run(*watches, cb, opts);
    }};
  return w;
}

file_watcher::file_watcher(int inotify_fd, int stop_fd)
  : inotify_fd_(inotify_fd), stop_fd_(stop_fd) {
}

bool file_watcher::quiet_since(uint64_t seen) const {
  std::lock_guard<std::mutex> guard{batch_mtx_};
  // A watch that failed sees nothing: it cannot vouch for quiet.
  if (failed_)
    return false;
  int queued = 0;
  if (::ioctl(inotify_fd_, FIONREAD, &queued) != 0)
    return false;
  return queued == 0 && seen_ == seen;
}

file_watcher::~file_watcher() {
  uint64_t one = 1;
  while (::write(stop_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
  if (thread_.joinable())
    thread_.join();
  ::close(inotify_fd_);
  ::close(stop_fd_);
}

void file_watcher::run(detail::watch_set& watches, const callback& cb,
                       const options& opts) {
  std::string why;
  // No exception ends the thread unseen: it is a failure like any other.
  try {
    why = watch(watches, cb, opts.poll ? opts.poll : poll_function{::poll});
  } catch (const std::exception& e) {
    why = std::string{"the watch failed: "} + e.what();
  } catch (...) {
    why = "the watch failed: unknown exception";
  }
  if (why.empty())
    return; // asked to stop
  {
    std::lock_guard<std::mutex> guard{batch_mtx_};
    failed_ = true;
  }
  if (opts.on_stop) {
    try {
      opts.on_stop(why);
    } catch (...) {
      // Nothing is left to tell: the thread ends either way.
    }
  }
}

std::string file_watcher::watch(detail::watch_set& watches, const callback& cb,
                                const poll_function& poll) {
  for (;;) {
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int timeout = watches.complete() ? -1 : rewatch_ms;
    int ready = poll(fds, 2, timeout);
    if (ready < 0 && errno != EINTR)
      return std::string{"poll on inotify failed: "} + std::strerror(errno);
    if (ready < 0)
      continue;
    if (fds[1].revents != 0)
      return {};
    // A broken descriptor would make every poll return at once, unread.
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL))
      return "poll on inotify reported the descriptor broken";
    auto why = report_batch(watches, cb);
    if (!why.empty())
      return why;
  }
}

std::string file_watcher::report_batch(detail::watch_set& watches,
                                       const callback& cb) {
  alignas(inotify_event) char buf[64 * 1024];
  std::lock_guard<std::mutex> guard{batch_mtx_};
  uint64_t hits = 0;
  auto last = file_event_kind::modified;
  // Drain the queue: one callback for the batch, with its last event.
  for (;;) {
    auto n = ::read(inotify_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno != EAGAIN)
      return std::string{"read from inotify failed: "} + std::strerror(errno);
    if (n <= 0)
      break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (!watches.relevant(*ev))
        continue;
      ++hits;
      last = (ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE))
               ? file_event_kind::complete
               : file_event_kind::modified;
    }
  }
  if (watches.refresh() && hits == 0) {
    hits = 1;
    last = file_event_kind::modified;
  }
  if (hits > 0) {
    seen_ += hits;
    cb(last, seen_);
  }
  return {};
}

} // namespace mcfg
