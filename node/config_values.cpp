#include "memcached_cfg/node/config_values.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <csignal>
#include <limits>
#include <string>
#include <utility>

namespace mcfg {

namespace {

bool all_digits(std::string_view s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (c < '0' || c > '9')
      return false;
  return true;
}

} // namespace

std::optional<uint64_t> parse_uint(std::string_view s, uint64_t max) {
  if (!all_digits(s))
    return std::nullopt;
  uint64_t x = 0;
  for (char c : s) {
    auto d = static_cast<uint64_t>(c - '0');
    if (x > (max - d) / 10)
      return std::nullopt;
    x = x * 10 + d;
  }
  return x;
}

std::optional<caf::timespan> parse_duration(std::string_view text) {
  size_t n = 0;
  while (n < text.size() && text[n] >= '0' && text[n] <= '9')
    ++n;
  auto digits = text.substr(0, n);
  auto unit = text.substr(n);
  int64_t scale = 0;
  if (unit == "ns")
    scale = 1;
  else if (unit == "us")
    scale = 1'000;
  else if (unit == "ms")
    scale = 1'000'000;
  else if (unit == "s")
    scale = 1'000'000'000;
  else if (unit == "m")
    scale = 60LL * 1'000'000'000;
  else if (unit == "h")
    scale = 3600LL * 1'000'000'000;
  else
    return std::nullopt;
  auto max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / scale);
  auto count = parse_uint(digits, max);
  if (!count)
    return std::nullopt;
  return caf::timespan{static_cast<int64_t>(*count) * scale};
}

std::optional<mode_t> parse_mode(std::string_view text) {
  std::string_view digits;
  if (text.size() >= 2 && text[0] == '0' && (text[1] == 'o' || text[1] == 'O'))
    digits = text.substr(2);
  else if (text.size() >= 2 && text[0] == '0')
    digits = text.substr(1);
  else
    return std::nullopt;
  if (digits.empty() || digits.size() > 4)
    return std::nullopt;
  mode_t x = 0;
  for (char c : digits) {
    if (c < '0' || c > '7')
      return std::nullopt;
    x = static_cast<mode_t>(x * 8 + static_cast<mode_t>(c - '0'));
  }
  if (x > 0777)
    return std::nullopt;
  return x;
}

std::optional<refresh_signal> parse_signal(std::string_view text) {
  std::string name;
  for (char c : text)
    name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.compare(0, 3, "SIG") == 0)
    name.erase(0, 3);
  static const std::pair<const char*, int> known[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},
    {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
  };
  for (auto& [n, sig] : known)
    if (name == n)
      return refresh_signal{sig, std::string{"SIG"} + n, {}, {}};
  return std::nullopt;
}

std::optional<listen_address> parse_listen_address(std::string_view text) {
  listen_address out;
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find("]:");
    if (close == std::string_view::npos || close == 1)
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return std::nullopt; // IPv6 needs brackets
  } else {
    port = text;
  }
  for (char c : host)
    if (std::isspace(static_cast<unsigned char>(c)) || c == '[' || c == ']'
        || c == '/')
      return std::nullopt;
  auto num = parse_uint(port, 65535);
  if (!num || port.size() > 5)
    return std::nullopt;
  if (!host.empty())
    out.host = std::string{host};
  out.port = static_cast<uint16_t>(*num);
  return out;
}

std::optional<std::string> parse_memcached_address(std::string_view text) {
  auto addr = parse_listen_address(text);
  if (!addr || addr->port == 0)
    return std::nullopt;
  // A control byte could only garble the log and status lines that name the
  // address.
  for (unsigned char c : addr->host)
    if (c < 0x20 || c == 0x7f)
      return std::nullopt;
  auto host = addr->host.find(':') == std::string::npos
                ? addr->host
                : "[" + addr->host + "]";
  return host + ":" + std::to_string(addr->port);
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost")
    return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

} // namespace mcfg
