#include "memcached_cfg/programs/start_wait.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include <systemd/sd-daemon.h>

#include "memcached_cfg/etcd/backoff.hpp"
#include "memcached_cfg/messages/duration.hpp"
#include "memcached_cfg/messages/log.hpp"
#include "memcached_cfg/source/etcd_source.hpp"
#include "memcached_cfg/source/etcd_store.hpp"

namespace mcfg {

void startup_note::set(source_status source, clock::time_point next_try) {
  std::lock_guard<std::mutex> guard{mtx_};
  source_ = std::move(source);
  next_try_ = next_try;
}

void startup_note::clear() {
  std::lock_guard<std::mutex> guard{mtx_};
  source_.reset();
}

std::optional<source_status> startup_note::get() const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!source_)
    return std::nullopt;
  auto out = *source_;
  auto left = next_try_ - clock::now();
  out.unreachable += left > clock::duration::zero()
                       ? "; next try in "
                           + format_duration(
                             std::chrono::ceil<std::chrono::milliseconds>(left))
                       : std::string{"; trying again now"};
  return out;
}

namespace {

/// Takes SIGINT, SIGTERM and SIGHUP on a thread of its own while the node
/// waits: a stop cancels the read under way (the etcd client's cancel())
/// and ends the pause; SIGHUP ends the pause only. It polls so that it can
/// end without taking a signal meant for the node's later signal thread:
/// one that comes after it ended stays pending for that thread.
class wait_signals {
public:
  wait_signals(const sigset_t& signals, etcd::client& reading)
    : signals_(signals), thread_([this, &reading] { take(reading); }) {
  }
  ~wait_signals() {
    done_ = true;
    thread_.join();
  }
  wait_signals(const wait_signals&) = delete;
  wait_signals& operator=(const wait_signals&) = delete;

  /// Pauses for `d`, or until a signal; false when asked to stop.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> guard{mtx_};
    wake_.wait_for(guard, d, [this] { return stop_ || try_now_; });
    try_now_ = false;
    return !stop_;
  }

  bool stopped() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return stop_;
  }

private:
  void take(etcd::client& reading) {
    while (!done_) {
      timespec poll{0, 100'000'000};
      int sig = sigtimedwait(&signals_, nullptr, &poll);
      if (sig < 0)
        continue; // the poll ended (EAGAIN), or EINTR
      std::lock_guard<std::mutex> guard{mtx_};
      if (sig == SIGHUP) {
        log::info("mcfgd", "received SIGHUP: reading the source now");
        try_now_ = true;
      } else {
        log::info("mcfgd", std::string{"received "} + strsignal(sig)
                             + ", stopping before the source answered");
        stop_ = true;
        reading.cancel();
      }
      wake_.notify_all();
      if (stop_)
        return;
    }
  }

  sigset_t signals_;
  mutable std::mutex mtx_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool try_now_ = false;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

bool every_file_exists(const node_config& cfg) {
  std::error_code ec;
  return std::all_of(cfg.files.begin(), cfg.files.end(), [&](auto& file) {
    return std::filesystem::exists(file.path, ec);
  });
}

/// The source as status shows it while the node waits.
source_status waiting_status(const node_config& cfg,
                             const etcd::client_options& opts,
                             const std::string& unreachable) {
  source_status out;
  out.backend = "etcd";
  out.path = describe_etcd_source(opts, cfg.etcd->prefix);
  out.watching = "not yet: the node is starting";
  out.unreachable = unreachable;
  return out;
}

/// Says, after a failed read, that the node waits `wait` and why: in the
/// log, in status (through `note`) and in systemd's STATUS=.
void report_wait(const node_config& cfg, const etcd::client_options& opts,
                 const std::string& unreachable, std::chrono::milliseconds wait,
                 bool& told_ready, startup_note& note) {
  note.set(waiting_status(cfg, opts, "starting: " + unreachable),
           startup_note::clock::now() + wait);
  auto next = format_duration(wait);
  log::warning("mcfgd", "starting: " + unreachable + "; next try in " + next);
  if (!told_ready && every_file_exists(cfg)) {
    // memcached, ordered after this unit, may start on the files an earlier
    // run wrote: better than no file at all, and said so.
    told_ready = true;
    auto line = "serving the files of an earlier run; " + unreachable;
    sd_notifyf(0, "READY=1\nSTATUS=%s", log::escape(line).c_str());
    log::warning("mcfgd", "ready: " + line);
  } else {
    auto line = (told_ready ? "serving the files of an earlier run; "
                            : "starting: no file written yet; ")
                + unreachable + "; next try in " + next;
    sd_notifyf(0, "STATUS=%s", log::escape(line).c_str());
  }
}

} // namespace

std::optional<node_source_read> wait_for_source(const node_config& cfg,
                                                node_source_read first,
                                                const sigset_t& signals,
                                                startup_note& note) {
  auto opts = etcd_client_options(*cfg.etcd);
  if (!opts) { // the password file changed since the first read
    node_source_read out;
    out.loaded.errors.push_back(
      {"source.etcd", 0, 0, "", opts.error().message});
    return out;
  }
  etcd::client reading{*opts};
  wait_signals taken{signals, reading};
  etcd::backoff waits{start_retry_initial, start_retry_max};
  auto since = etcd::etcd_reachability::clock::now();
  bool told_ready = false;
  for (auto read = std::move(first);;) {
    auto why = read.loaded.errors.empty() ? std::string{"no answer"}
                                          : read.loaded.errors.front().message;
    auto wait = waits.next();
    report_wait(cfg, *opts, etcd::describe_unreachable(since, why), wait,
                told_ready, note);
    if (!taken.pause(wait))
      return std::nullopt;
    read = load_node_source(cfg, &reading);
    if (taken.stopped())
      return std::nullopt;
    if (!read.unreachable)
      return read;
  }
}

} // namespace mcfg
