#pragma once
// The callback module of a memcached_cfg writer, as an Erlang behaviour's
// callback module: the specifics of one file, with no actor in it. The writer
// owns one instance per incarnation and drives it; the module keeps its own
// state, so it is unit-testable with plain function calls.
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "memcached_cfg/messages/config_change.hpp"

namespace mcfg {

/// What `produce` makes of the module's state.
class rendering {
public:
  enum class kind { content, nothing, refused };

  /// The file's bytes.
  static rendering content(std::string bytes) {
    return {kind::content, std::move(bytes)};
  }
  /// Nothing to write: the attempt succeeds without touching the file.
  static rendering nothing() {
    return {kind::nothing, {}};
  }
  /// The state cannot be rendered (its consumer would misread it); the file
  /// already in place stays. `reason` must not contain a secret.
  static rendering refused(std::string reason) {
    return {kind::refused, std::move(reason)};
  }

  kind what() const {
    return kind_;
  }
  /// The bytes for `content`, the reason for `refused`.
  const std::string& text() const {
    return text_;
  }

private:
  rendering(kind k, std::string text) : kind_(k), text_(std::move(text)) {
  }
  kind kind_;
  std::string text_;
};

class writer_module {
public:
  virtual ~writer_module() = default;

  /// Builds the state from the whole current source of truth.
  virtual void init(const snapshot& source) = 0;

  /// Is `key` any of this module's business? Called before handle_event.
  virtual bool filter_event(const std::string& key) const = 0;

  /// Applies one change; returns false when the state is unchanged.
  virtual bool handle_event(const config_change& change) = 0;

  /// Renders the file from the current state.
  virtual rendering produce() const = 0;

  /// The state for status output, secrets redacted.
  virtual std::map<std::string, std::string> format_status() const = 0;
};

} // namespace mcfg
