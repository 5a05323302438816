// libFuzzer target: the users of one etcd revision, keys and JSON values of
// any bytes, through what the etcd store does with each revision
// (to_users_version, then validate_users: the schema and a validator).
// The inputs a node has aborted on: a number no double holds (`1e400`), a
// key that is not valid UTF-8; and deep nesting, huge values, invalid UTF-8
// inside values.
//
// Input: records separated by 0x1E, each a key and its value separated by
// the first 0x1F (no 0x1F: the whole record is the key, the value empty).
// Each key is put under the prefix `/fuzz/users/`; the i-th has mod_revision
// i + 1, the revision is the number of records.
//
// Properties:
// - nothing throws;
// - a document or at least one error, never both;
// - a document holds exactly one `users/<name>` per record (the last of
//   equal keys), every name valid UTF-8;
// - every error names where it comes from (`etcd /fuzz/users/<key> at
//   revision N`) and a key under `users`, has a message, and its text is
//   valid UTF-8 (so the status can show it);
// - no error text contains a password: a value that is a JSON object with
//   a distinctive string `password` (8 bytes or more, no whitespace, a
//   digit and a letter, found in no etcd key and no error's key) has it in
//   no error.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.hpp"
#include "memcached_cfg/source/etcd_store.hpp"

namespace {

const std::string prefix = "/fuzz/";

std::map<std::string, mcfg::etcd::key_value> decode(std::string_view in) {
  std::map<std::string, mcfg::etcd::key_value> out;
  int64_t revision = 0;
  for (;;) {
    auto end = in.find('\x1e');
    auto record = in.substr(0, end);
    auto sep = record.find('\x1f');
    mcfg::etcd::key_value kv;
    kv.key = mcfg::etcd::users_key_prefix(prefix)
             + std::string{record.substr(0, sep)};
    if (sep != std::string_view::npos)
      kv.value = std::string{record.substr(sep + 1)};
    kv.mod_revision = ++revision;
    kv.create_revision = kv.mod_revision;
    out[kv.key] = std::move(kv);
    if (end == std::string_view::npos)
      return out;
    in.remove_prefix(end + 1);
  }
}

/// Whether a password could not be a piece of an error's fixed wording or
/// position: 8 bytes or more, no whitespace, a digit and a letter (the
/// messages' words have no digit, their numbers no letter).
bool distinctive(const std::string& pw) {
  bool digit = false;
  bool letter = false;
  for (unsigned char c : pw) {
    if (std::isspace(c))
      return false;
    digit = digit || std::isdigit(c);
    letter = letter || std::isalpha(c);
  }
  return pw.size() >= 8 && digit && letter;
}

/// The distinctive passwords of the values (see the properties).
std::set<std::string>
passwords_of(const std::map<std::string, mcfg::etcd::key_value>& kvs) {
  std::set<std::string> out;
  for (auto& [key, kv] : kvs) {
    auto doc = nlohmann::json::parse(kv.value, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
      continue;
    auto pw = doc.find("password");
    if (pw == doc.end() || !pw->is_string())
      continue;
    auto text = pw->get<std::string>();
    if (!distinctive(text))
      continue;
    bool in_a_key = false;
    for (auto& [other, unused] : kvs)
      in_a_key = in_a_key || other.find(text) != std::string::npos;
    if (!in_a_key)
      out.insert(text);
  }
  return out;
}

void check_error(const mcfg::located_error& e,
                 const std::set<std::string>& passwords) {
  FUZZ_CHECK(e.file.rfind("etcd " + prefix + "users/", 0) == 0);
  FUZZ_CHECK(e.file.find(" at revision ") != std::string::npos);
  FUZZ_CHECK(e.key.rfind("users/", 0) == 0);
  FUZZ_CHECK(!e.message.empty());
  auto text = e.to_string();
  FUZZ_CHECK(mcfg::is_valid_utf8(text));
  for (auto& pw : passwords)
    FUZZ_CHECK(text.find(pw) == std::string::npos);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto kvs = decode(mcfg_fuzz::as_text(data, size));
  auto revision = static_cast<int64_t>(kvs.size());
  mcfg::source_load_result result;
  bool threw = false;
  try {
    auto v = mcfg::etcd::to_users_version(kvs, prefix, revision);
    // Nothing to refuse beyond the schema: what the store checks first.
    result = mcfg::validate_users(v, {});
  } catch (...) {
    threw = true;
  }
  FUZZ_CHECK(!threw);
  FUZZ_CHECK(result.ok() != !result.errors.empty());
  auto passwords = passwords_of(kvs);
  // An error's key may name a field of a value (`users/bob/<field>`):
  // fields are not secrets, so a password equal to one is no finding.
  for (auto& e : result.errors)
    for (auto i = passwords.begin(); i != passwords.end();)
      i = e.key.find(*i) != std::string::npos ? passwords.erase(i) : ++i;
  for (auto& e : result.errors)
    check_error(e, passwords);
  if (!result.ok())
    return 0;
  auto& values = result.value->values;
  FUZZ_CHECK(values.size() == kvs.size());
  auto users = mcfg::etcd::users_key_prefix(prefix);
  for (auto& [key, kv] : kvs) {
    auto name = key.substr(users.size());
    FUZZ_CHECK(mcfg::is_valid_utf8(name));
    FUZZ_CHECK(values.count(std::string{mcfg::users_prefix} + name) == 1);
  }
  return 0;
}
