#pragma once
// The values node.yaml's scalars hold, parsed from their text without YAML:
// durations, file modes, signal names, listen and memcached addresses
// (node_config.hpp says where each appears). node.yaml's loader reports what
// they refuse at the key's line and column; mcfgctl parses its --timeout and
// --node with the same functions, so both read a value alike.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

#include <caf/timestamp.hpp>

#include "memcached_cfg/refresh/refresh_spec.hpp"

namespace mcfg {

/// Where the control API listens over TCP.
struct listen_address {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
};

/// Decimal digits, nothing else, to a value no larger than `max`; nothing
/// for anything else or on overflow.
std::optional<uint64_t> parse_uint(std::string_view text, uint64_t max);

/// "100ms", "10s", "2m", "500us", "1h", "250ns": a non-negative integer and
/// a unit, nothing else. Nothing for anything else, or when it overflows
/// caf::timespan.
std::optional<caf::timespan> parse_duration(std::string_view text);

/// "0600", "00640", "0o600": an octal mode up to 0777, written with its
/// leading 0. Nothing for anything else.
std::optional<mode_t> parse_mode(std::string_view text);

/// "HUP", "SIGHUP", "hup": a signal by name (HUP, INT, QUIT, TERM, USR1,
/// USR2); its number and canonical name.
std::optional<refresh_signal> parse_signal(std::string_view text);

/// "host:port", "[v6addr]:port", ":port" or "port"; port 0..65535, host
/// 127.0.0.1 when left out.
std::optional<listen_address> parse_listen_address(std::string_view text);

/// memcached's address for a refresh's `verify`: what parse_listen_address
/// takes, with a port from 1 to 65535 and no control byte in the host;
/// written back as "host:port", an IPv6 host in brackets ("[::1]:11211").
/// Nothing for anything else.
std::optional<std::string> parse_memcached_address(std::string_view text);

/// Whether `host` is a loopback address: "localhost", 127.0.0.0/8, ::1.
bool is_loopback_host(const std::string& host);

} // namespace mcfg
