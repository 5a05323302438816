#pragma once
// The source of truth as a document: loading the cluster YAML, validating its
// schema and flattening it into the keys file_store hands out
// (ARCHITECTURE.md §5). Plain code, no actor.
//
// The format:
//
//   users:
//     alice: {password: "s3cret", roles: [admin, reader]}
//     bob:   {password: "pw2"}
//
// flattens to one key per user, `users/<name>`, whose value is a dictionary
// {password: string, roles: list of strings} (roles empty when absent).
//
// No message, error or rendering made here ever contains a password: errors
// name keys and positions, never values.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/source/located_error.hpp"

namespace mcfg {

/// A loaded, valid source document.
struct source_document {
  /// The file as the caller named it.
  std::string file;
  /// The flattened source of truth: `users/<name>` -> {password, roles}.
  snapshot values;
  /// Where things are written in the file. For `users` and each
  /// `users/<name>`: where the key is written (the user's name). For the
  /// fields `users/<name>/password` and `users/<name>/roles`: where the
  /// value is written.
  std::map<std::string, source_mark> marks;

  /// An error about `key`, located at the mark of `key`, or of its nearest
  /// ancestor with a mark (`users/alice/password` -> `users/alice` ->
  /// `users`), or without a position when none has one. For refusing a
  /// document that a later validation (e.g. memcached's limits) rejects.
  located_error locate(const std::string& key, std::string message) const;
};

/// The outcome of loading a source: a document, or at least one error.
using source_load_result = load_result<source_document>;

/// The most a source file may hold: far beyond any real user list, and small
/// enough that a runaway file cannot exhaust memory.
constexpr size_t max_source_bytes = size_t{16} << 20;

/// The bytes of the source file at `path` (symlinks followed), or why they
/// cannot be had. Only a regular file is read: it is opened without blocking
/// (a FIFO would block a reader for ever; a character device such as
/// /dev/zero never ends) and checked with fstat, and one larger than
/// `max_bytes` is refused with its size.
std::variant<std::string, located_error>
read_source_bytes(const std::string& path, size_t max_bytes = max_source_bytes);

/// Reads (read_source_bytes) and validates the source YAML at `path`. An
/// unreadable file gives one error naming the path and the reason.
source_load_result load_source_file(const std::string& path);

/// Validates YAML text; `file` only names it in errors.
source_load_result parse_source(std::string_view text,
                                const std::string& file = "<source>");

/// One user of a source held user by user (the etcd backend): its name, its
/// value as JSON text ({"password": ..., "roles": [...]}), and what errors
/// about it call the place it comes from (e.g. the etcd key and revision).
struct user_text {
  std::string name;
  std::string text;
  std::string where;
};

/// Validates a source given user by user, with the rules and messages a
/// source file gets for each user; a value must be strict JSON too. Errors
/// name the user's `where`, the line and column inside its value, and the
/// key (`users/<name>/...`); the document is named `file`.
source_load_result parse_source_users(const std::vector<user_text>& users,
                                      const std::string& file);

/// Whether `text` is well-formed UTF-8 (no overlong form, surrogate or code
/// point beyond U+10FFFF): what JSON, the status and a log reader expect of
/// a name.
bool is_valid_utf8(std::string_view text);

/// `text` with every byte that is not part of well-formed UTF-8 written as
/// `\xHH`: how an error names a key that is not valid UTF-8.
std::string escape_invalid_utf8(std::string_view text);

/// The changes that turn `old` into `neu`, in key order: a key added or
/// whose value differs is a change carrying the new value; a key gone is
/// `removed` (with an empty value). Equal snapshots give nothing.
std::vector<config_change> diff(const snapshot& old, const snapshot& neu);

/// Checks a backend runs on every version beyond the schema (what the
/// files' modules refuse); returns the problems, located with
/// source_document::locate.
using source_validator
  = std::function<std::vector<located_error>(const source_document&)>;

/// `result` with `validate` applied when it loaded: the document, or the
/// problems validate finds. Every backend runs this after its schema.
source_load_result check_source(source_load_result result,
                                const source_validator& validate);

} // namespace mcfg
