#pragma once
// The project's error codes, as a CAF error category, so that exit reasons and
// failed requests print as readable text: what was attempted, on which path,
// and what the OS said.
#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/make_message.hpp>

namespace mcfg {

enum class errc : uint8_t {
  /// A file operation failed; context: operation, path, OS error text.
  file_operation_failed = 1,
  /// A writer kept failing past its deadline and exited; context: the file,
  /// then the last failure's operation, path and OS error text, then the
  /// deadline as text.
  write_deadline_exceeded,
  /// A module refused to render its state; context: path, reason.
  invalid_content,
  /// The writer stopped before the sync could be answered; context: path.
  writer_stopped,
  /// The source of truth's edit was refused; context: the located errors.
  invalid_source,
  /// A control request named no known file; context: the name.
  unknown_file,
  /// A file's refresh failed (its retry is armed); context: path, reason.
  refresh_failed,
  /// The refresher stopped before the file was refreshed; context: path.
  refresher_stopped,
  /// A file's consumer check gave up: the consumer was not shown to enforce
  /// the version; context: path, version (as text), what it still does.
  verify_failed,
  /// The node has not started its tree yet (it waits for its source);
  /// context: what it waits for, as "starting: <why>".
  node_starting,
};

const char* to_string(errc x);

/// The CAF error category of `errc`.
constexpr caf::atom_value errc_category = caf::atom("mcfg");

/// A file operation `op` on `path` failed with OS error `os_errno`.
caf::error make_file_error(const std::string& op, const std::string& path,
                           int os_errno);

/// The text of an error of this project's category with code `code` and
/// context `context` (what `describe` and the actor system print).
std::string render_error(uint8_t code, const caf::message& context);

/// Renders any error as one line of text. Errors of this project's category
/// read like "rename /etc/auth.tmp -> /etc/auth failed: Is a directory";
/// other categories fall back to CAF's own rendering.
std::string describe(const caf::error& err);

} // namespace mcfg

CAF_ERROR_CODE_ENUM(mcfg::errc, "mcfg")
