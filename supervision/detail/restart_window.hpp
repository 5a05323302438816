#pragma once
// Restart intensity bookkeeping, as OTP's add_restart: the times of recent
// restarts, of which those within `period` of now count. Plain code, driven
// by whatever clock the caller reads (the actor's, so tests move it).
#include <cstddef>
#include <deque>

#include <caf/actor_clock.hpp>
#include <caf/timespan.hpp>

namespace mcfg::sup::detail {

class restart_window {
public:
  using time_point = caf::actor_clock::time_point;

  /// Records a restart at `now`; returns how many restarts, this one
  /// included, lie within `period` of now. As in OTP a restart exactly
  /// `period` ago still counts.
  size_t add(time_point now, caf::timespan period) {
    drop_older_than(now - period);
    times_.push_back(now);
    return times_.size();
  }

  /// How many restarts lie within `period` of `now`.
  size_t count(time_point now, caf::timespan period) {
    drop_older_than(now - period);
    return times_.size();
  }

private:
  void drop_older_than(time_point threshold) {
    while (!times_.empty() && times_.front() < threshold)
      times_.pop_front();
  }

  std::deque<time_point> times_;
};

} // namespace mcfg::sup::detail
