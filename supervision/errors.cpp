#include "memcached_cfg/supervision/errors.hpp"

#include <functional>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/message.hpp>

namespace mcfg::sup {

namespace {

/// Renders an error of a category this library does not know.
using foreign_renderer = std::function<std::string(const caf::error&)>;

std::string describe_with(const caf::error& reason,
                          const foreign_renderer& foreign);

template <class T>
const T* element_at(const caf::message& ctx, size_t pos) {
  if (pos < ctx.size() && ctx.match_element<T>(pos))
    return &ctx.get_as<T>(pos);
  return nullptr;
}

std::string text_at(const caf::message& ctx, size_t pos) {
  auto x = element_at<std::string>(ctx, pos);
  return x ? *x : std::string{};
}

std::string reason_at(const caf::message& ctx, size_t pos,
                      const foreign_renderer& foreign) {
  auto x = element_at<caf::error>(ctx, pos);
  return x ? describe_with(*x, foreign) : std::string{"unknown reason"};
}

std::string count_at(const caf::message& ctx, size_t pos) {
  auto x = element_at<uint32_t>(ctx, pos);
  return x ? std::to_string(*x) : std::string{"?"};
}

std::string render(uint8_t code, const caf::message& ctx,
                   const foreign_renderer& foreign) {
  auto sup = "supervisor " + text_at(ctx, 0);
  auto child = "'" + text_at(ctx, 1) + "'";
  switch (static_cast<sup_errc>(code)) {
    case sup_errc::restart_limit_reached:
      return sup + " reached its restart limit (" + count_at(ctx, 2) + " in "
             + text_at(ctx, 3) + ") after child " + child
             + " failed: " + reason_at(ctx, 4, foreign);
    case sup_errc::start_failed:
      return sup + " failed to start child " + child + ": "
             + reason_at(ctx, 2, foreign);
    case sup_errc::child_not_found:
      return sup + " has no child " + child;
    case sup_errc::child_running:
      return "child " + child + " of " + sup + " is running";
    case sup_errc::child_restarting:
      return "child " + child + " of " + sup + " is waiting to be restarted";
    case sup_errc::child_already_present:
      return sup + " already has a (stopped) child " + child;
    case sup_errc::child_already_started:
      return sup + " already runs child " + child;
    case sup_errc::invalid_child_spec:
      if (text_at(ctx, 0).empty())
        return "invalid child spec " + child + ": " + text_at(ctx, 2);
      return sup + " refused child " + child + ": " + text_at(ctx, 2);
    case sup_errc::invalid_flags:
      return sup + " has invalid flags: " + text_at(ctx, 1);
    case sup_errc::invalid_child_id:
      return "invalid child id \"" + text_at(ctx, 0) + "\": " + text_at(ctx, 1);
    case sup_errc::start_function_threw:
      return "start function threw: " + text_at(ctx, 0);
    case sup_errc::supervisor_stopped:
      return sup + " stopped: " + reason_at(ctx, 1, foreign);
  }
  return "supervisor error " + std::to_string(code) + " " + caf::to_string(ctx);
}

std::string describe_with(const caf::error& reason,
                          const foreign_renderer& foreign) {
  if (!reason)
    return "normal";
  if (reason.category() == sup_errc_category)
    return render(reason.code(), reason.context(), foreign);
  if (reason.category() == caf::atom("exit") && reason.context().empty())
    return caf::to_string(static_cast<caf::exit_reason>(reason.code()));
  return foreign(reason);
}

} // namespace

const char* to_string(sup_errc x) {
  switch (x) {
    case sup_errc::restart_limit_reached:
      return "restart_limit_reached";
    case sup_errc::start_failed:
      return "start_failed";
    case sup_errc::child_not_found:
      return "child_not_found";
    case sup_errc::child_running:
      return "child_running";
    case sup_errc::child_restarting:
      return "child_restarting";
    case sup_errc::child_already_present:
      return "child_already_present";
    case sup_errc::child_already_started:
      return "child_already_started";
    case sup_errc::invalid_child_spec:
      return "invalid_child_spec";
    case sup_errc::invalid_flags:
      return "invalid_flags";
    case sup_errc::invalid_child_id:
      return "invalid_child_id";
    case sup_errc::start_function_threw:
      return "start_function_threw";
    case sup_errc::supervisor_stopped:
      return "supervisor_stopped";
  }
  return "unknown";
}

caf::error make_sup_error(sup_errc code, const std::string& supervisor,
                          child_id child) {
  return caf::make_error(code, supervisor, caf::to_string(child));
}

caf::error make_sup_error(sup_errc code, const std::string& supervisor,
                          child_id child, caf::error reason) {
  return caf::make_error(code, supervisor, caf::to_string(child),
                         std::move(reason));
}

caf::error make_restart_limit_error(const std::string& supervisor,
                                    child_id child, uint32_t intensity,
                                    caf::timespan period, caf::error reason) {
  return caf::make_error(sup_errc::restart_limit_reached, supervisor,
                         caf::to_string(child), intensity,
                         format_duration(period), std::move(reason));
}

std::string render_sup_error(uint8_t code, const caf::message& ctx) {
  return render(code, ctx, caf::actor_system_config::render);
}

std::string describe(const caf::error& reason) {
  return describe_with(reason, caf::actor_system_config::render);
}

std::string describe(const caf::error& reason, const caf::actor_system& sys) {
  return describe_with(reason,
                       [&sys](const caf::error& x) { return sys.render(x); });
}

std::string quoted(child_id id) {
  return "'" + caf::to_string(id) + "'";
}

bool is_normal_exit(const caf::error& reason) {
  return !reason || reason == caf::exit_reason::normal
         || reason == caf::exit_reason::user_shutdown;
}

} // namespace mcfg::sup
