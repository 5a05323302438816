#include "memcached_cfg/supervision/child_spec.hpp"

#include <algorithm>

#include <caf/error.hpp>
#include <caf/make_message.hpp>

#include "memcached_cfg/supervision/errors.hpp"

namespace mcfg::sup {

namespace {

bool fits_atom(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
         || (c >= 'a' && c <= 'z') || c == '_';
}

caf::error invalid_spec(const std::string& supervisor, const child_spec& spec,
                        std::string what) {
  return caf::make_error(sup_errc::invalid_child_spec, supervisor,
                         caf::to_string(spec.id), std::move(what));
}

} // namespace

caf::expected<child_id> make_child_id(std::string_view name) {
  auto fail = [&](const char* what) {
    return caf::make_error(sup_errc::invalid_child_id, std::string{name},
                           std::string{what});
  };
  if (name.empty())
    return fail("a child id cannot be empty");
  if (name.size() > 10)
    return fail("a child id has at most 10 characters");
  if (!std::all_of(name.begin(), name.end(), fits_atom))
    return fail("a child id consists of A-Z, a-z, 0-9 and _");
  return caf::atom_from_string(caf::string_view{name.data(), name.size()});
}

const char* to_string(restart_type x) {
  switch (x) {
    case restart_type::permanent:
      return "permanent";
    case restart_type::transient:
      return "transient";
    case restart_type::temporary:
      return "temporary";
  }
  return "unknown";
}

const char* to_string(child_type x) {
  return x == child_type::worker ? "worker" : "supervisor";
}

const char* to_string(strategy x) {
  switch (x) {
    case strategy::one_for_one:
      return "one_for_one";
    case strategy::one_for_all:
      return "one_for_all";
    case strategy::rest_for_one:
      return "rest_for_one";
  }
  return "unknown";
}

std::string to_string(const shutdown_policy& x) {
  switch (x.what()) {
    case shutdown_policy::kind::timeout:
      return format_duration(x.time());
    case shutdown_policy::kind::brutal_kill:
      return "brutal_kill";
    case shutdown_policy::kind::infinity:
      return "infinity";
  }
  return "unknown";
}

std::string format_duration(caf::timespan d) {
  auto n = d.count();
  if (n != 0 && n % 1'000'000'000 == 0)
    return std::to_string(n / 1'000'000'000) + "s";
  if (n != 0 && n % 1'000'000 == 0)
    return std::to_string(n / 1'000'000) + "ms";
  if (n != 0 && n % 1'000 == 0)
    return std::to_string(n / 1'000) + "us";
  return std::to_string(n) + "ns";
}

caf::timespan restart_backoff::delay(uint32_t failures) const {
  if (!enabled())
    return caf::timespan{0};
  auto result = min;
  // Doubling stops at max, so it cannot overflow.
  for (uint32_t i = 0; i < failures && result < max; ++i)
    result *= 2;
  return std::min(result, max);
}

child_spec worker_child(child_id id, start_function start) {
  child_spec result;
  result.id = id;
  result.start = std::move(start);
  return result;
}

caf::error check_child_spec(const child_spec& spec,
                            const std::string& supervisor) {
  if (spec.id == caf::atom(""))
    return invalid_spec(supervisor, spec, "the child has no id");
  if (!spec.start)
    return invalid_spec(supervisor, spec, "the child has no start function");
  if (spec.shutdown.what() == shutdown_policy::kind::timeout
      && spec.shutdown.time().count() < 0)
    return invalid_spec(supervisor, spec,
                        "a shutdown timeout cannot be negative");
  if (spec.backoff.enabled() && spec.backoff.max < spec.backoff.min)
    return invalid_spec(supervisor, spec, "backoff max is below backoff min");
  return caf::none;
}

caf::error check_flags(const supervisor_flags& flags) {
  if (flags.period.count() <= 0)
    return caf::make_error(sup_errc::invalid_flags, flags.name,
                           std::string{"the period must be positive"});
  return caf::none;
}

} // namespace mcfg::sup
