#include "memcached_cfg/etcd/detail/wire.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <limits>

namespace mcfg::etcd::detail {

namespace {

[[noreturn]] void malformed_number(const char* name) {
  throw etcd_error(etcd_errc::rejected,
                   std::string{"etcd sent a malformed number in '"} + name
                     + "'");
}

} // namespace

std::string base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(raw.data()),
                           static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string unbase64(std::string_view text) {
  if (text.empty())
    return {};
  // EVP_DecodeBlock takes an int.
  if (text.size() % 4 != 0
      || text.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw etcd_error(etcd_errc::rejected, "etcd sent malformed base64");
  std::string out(3 * text.size() / 4, '\0');
  auto n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(text.data()),
                           static_cast<int>(text.size()));
  // EVP_DecodeBlock counts the padding as zero bytes (and trims blanks
  // first, so a short result cannot be trusted to hold the padding).
  auto padding = static_cast<size_t>(
    std::count(text.end() - 2, text.end(), '='));
  if (n < 0 || static_cast<size_t>(n) < padding)
    throw etcd_error(etcd_errc::rejected, "etcd sent malformed base64");
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

int64_t int_field(const json& j, const char* name) {
  auto i = j.find(name);
  if (i == j.end() || i->is_null())
    return 0;
  if (i->is_number_integer() && !i->is_number_unsigned())
    return i->get<int64_t>();
  if (i->is_number_unsigned()) {
    auto u = i->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      malformed_number(name);
    return static_cast<int64_t>(u);
  }
  if (!i->is_string())
    malformed_number(name); // a fraction (a cast would be undefined), a bool
  auto& text = i->get_ref<const std::string&>();
  int64_t result = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(),
                                   result);
  if (ec != std::errc{} || end != text.data() + text.size())
    malformed_number(name);
  return result;
}

std::string bytes_field(const json& j, const char* name) {
  auto i = j.find(name);
  return i == j.end() || !i->is_string() ? std::string{}
                                         : unbase64(i->get<std::string>());
}

key_value to_key_value(const json& j) {
  key_value kv;
  kv.key = bytes_field(j, "key");
  kv.value = bytes_field(j, "value");
  kv.create_revision = int_field(j, "create_revision");
  kv.mod_revision = int_field(j, "mod_revision");
  kv.version = int_field(j, "version");
  kv.lease = int_field(j, "lease");
  return kv;
}

int64_t header_revision(const json& j) {
  auto h = j.find("header");
  return h == j.end() ? 0 : int_field(*h, "revision");
}

json to_json(const txn_op& op) {
  if (op.kind == txn_op::put) {
    json put{{"key", base64(op.key)}, {"value", base64(op.value)}};
    if (op.lease != 0)
      put["lease"] = std::to_string(op.lease);
    return json{{"request_put", put}};
  }
  json del{{"key", base64(op.key)}};
  if (!op.range_end.empty())
    del["range_end"] = base64(op.range_end);
  return json{{"request_delete_range", del}};
}

} // namespace mcfg::etcd::detail
