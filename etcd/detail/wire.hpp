#pragma once
// The gateway's JSON mapping of etcd's protobuf messages, both ways: bytes
// travel base64-encoded and 64-bit integers as JSON strings. Shared by the
// client's unary calls and the watch stream's parser; private to etcd/.
//
// What etcd sends is read strictly: a field of the wrong type, a number out
// of int64's range, bad base64, is an etcd_error (rejected) and never
// another exception or undefined behaviour, for the watch stream's parser
// (watch_stream.hpp) reads whatever bytes arrive.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "memcached_cfg/etcd/client.hpp"

namespace mcfg::etcd::detail {

using json = nlohmann::json;

std::string base64(std::string_view raw);

/// Throws etcd_error (rejected) when `text` is not base64.
std::string unbase64(std::string_view text);

/// The integer `j[name]`, 0 when absent or null. The gateway writes 64-bit
/// integers as strings; numbers are accepted too. Throws etcd_error
/// (rejected) for anything else: a fraction, a number out of int64's range,
/// a string that is not all digits.
int64_t int_field(const json& j, const char* name);

/// The bytes `j[name]` carries base64-encoded; empty when absent.
std::string bytes_field(const json& j, const char* name);

/// A KeyValue message.
key_value to_key_value(const json& j);

/// A reply's header.revision; 0 without one.
int64_t header_revision(const json& j);

/// One operation of a transaction, as a RequestOp.
json to_json(const txn_op& op);

} // namespace mcfg::etcd::detail
