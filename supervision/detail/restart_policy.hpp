#pragma once
// OTP's restart rules as decisions without effects: whether an exit restarts
// a child, whether the restart intensity allows one more restart, how long
// the backoff waits, and which children a restart stops and starts by the
// strategy. supervisor_state carries the decisions out and logs them; this
// holds no actor and reads whatever clock the caller passes (the actor's, so
// tests move it).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/timespan.hpp>

#include "memcached_cfg/supervision/child_spec.hpp"
#include "memcached_cfg/supervision/detail/restart_window.hpp"

namespace mcfg::sup::detail {

// supervisor_state.hpp
struct child_record;
struct step;

class restart_policy {
public:
  using time_point = caf::actor_clock::time_point;

  restart_policy() = default;

  /// The strategy and intensity of `flags`.
  explicit restart_policy(const supervisor_flags& flags)
    : how_(flags.how), intensity_(flags.intensity), period_(flags.period) {
  }

  /// Whether an incarnation that exited by itself with `reason` is started
  /// again: always for a permanent child, unless the exit was normal for a
  /// transient one, never for a temporary one.
  static bool restarts(restart_type type, const caf::error& reason);

  /// Counts a restart at `now`; false when it is one more than the
  /// intensity allows within the period (the supervisor then gives up).
  bool admit(time_point now);

  /// How many restarts lie within the period of `now`, for the log.
  size_t recent(time_point now);

  /// The wait before `child`'s next incarnation: none without a backoff,
  /// else its backoff's delay for the quick restarts in a row, which this
  /// counts (an incarnation that ran `reset_after` starts them over).
  static caf::timespan delay(child_record& child, time_point now);

  /// The steps of a restart that `id` triggers: the others of its group by
  /// the strategy (itself; it and those after it; all) stopped in reverse
  /// start order, then the group, but for temporary children, started in
  /// start order. `children` is in start order.
  std::deque<step> steps(const std::vector<child_record>& children,
                         child_id id) const;

private:
  strategy how_ = strategy::one_for_one;
  uint32_t intensity_ = 0;
  caf::timespan period_{0};
  restart_window window_;
};

} // namespace mcfg::sup::detail
