#include "memcached_cfg/supervision/detail/restart_policy.hpp"

#include <algorithm>

#include "memcached_cfg/supervision/detail/supervisor_state.hpp"

namespace mcfg::sup::detail {

bool restart_policy::restarts(restart_type type, const caf::error& reason) {
  switch (type) {
    case restart_type::permanent:
      return true;
    case restart_type::transient:
      return !is_normal_exit(reason);
    case restart_type::temporary:
      break;
  }
  return false;
}

bool restart_policy::admit(time_point now) {
  return window_.add(now, period_) <= intensity_;
}

size_t restart_policy::recent(time_point now) {
  return window_.count(now, period_);
}

caf::timespan restart_policy::delay(child_record& child, time_point now) {
  auto& backoff = child.spec.backoff;
  if (!backoff.enabled())
    return caf::timespan{0};
  if (child.started_at && now - *child.started_at >= backoff.reset_after)
    child.quick_restarts = 0;
  return backoff.delay(child.quick_restarts++);
}

std::deque<step>
restart_policy::steps(const std::vector<child_record>& children,
                      child_id id) const {
  std::deque<step> result;
  auto pos = std::find_if(children.begin(), children.end(),
                          [id](auto& c) { return c.spec.id == id; });
  if (pos == children.end())
    return result;
  auto first = how_ == strategy::one_for_all ? children.begin() : pos;
  auto last = how_ == strategy::one_for_one ? pos + 1 : children.end();
  // Stop the others in reverse start order, then start all in start order.
  for (auto i = std::make_reverse_iterator(last);
       i != std::make_reverse_iterator(first); ++i)
    if (i->spec.id != id)
      result.push_back({step_kind::stop, i->spec.id});
  for (auto i = first; i != last; ++i)
    if (i->spec.restart != restart_type::temporary)
      result.push_back({step_kind::start, i->spec.id});
  return result;
}

} // namespace mcfg::sup::detail
