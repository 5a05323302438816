#pragma once
// The parser of a watch stream (client::watch_prefix): the gateway answers
// POST /v3/watch with one JSON object per line, for as long as the watch
// lasts, and libcurl hands the bytes over in pieces cut anywhere (mid-line,
// mid-UTF-8). watch_stream takes those pieces and gives back what the lines
// say, in order; the client decides what each item means for the watch.
//
// The bytes come from the network, so they are hostile: no exception leaves
// this parser. A line it cannot read (not JSON, not UTF-8, a number out of
// range, a field of the wrong type) ends the stream with a `malformed` item
// naming what was wrong, never a byte of the line itself (it may hold a
// value). Private to etcd/.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "memcached_cfg/etcd/client.hpp"

namespace mcfg::etcd::detail {

/// One thing a watch stream said.
struct watch_item {
  enum kind_t {
    /// The watch is established (etcd's created response).
    created,
    /// The events of one revision, all of them: `batch`.
    revision,
    /// A progress notification (a result with neither events nor created
    /// nor canceled): the member's watch is caught up to
    /// `batch.revision`, its header's revision, and nothing under the
    /// prefix changed since the last revision delivered. `batch.events`
    /// is empty.
    progress,
    /// The start revision was compacted: `compact_revision`. Final.
    compacted,
    /// etcd cancelled the watch: `message` is its cancel_reason. Final.
    canceled,
    /// The gateway ended the stream with an error (no leader, a refused
    /// token): `message` is its text. Final.
    error,
    /// A line this parser cannot read: `message` says what was wrong. Final.
    malformed,
  };
  kind_t kind = created;
  watch_revision batch;
  int64_t compact_revision = 0;
  std::string message;
};

/// Splits the bytes of a watch stream into lines and each line into items.
/// Items come out in stream order; a line's items are all there or none is
/// (a line that turns out malformed gives only the `malformed` item). After
/// a final item the rest of the stream is ignored.
class watch_stream {
public:
  /// Far above any message etcd sends (a revision's events are bounded by
  /// its request size, 1.5 MiB by default), low enough that a stream
  /// without newlines cannot take all memory.
  static constexpr size_t default_max_line = size_t{256} << 20;

  explicit watch_stream(size_t max_line = default_max_line)
    : max_line_(max_line) {
  }

  /// Takes the next bytes of the stream, as they arrived.
  void feed(std::string_view bytes) noexcept;

  /// The oldest item not yet taken; empty when none is waiting.
  std::optional<watch_item> next() noexcept;

  /// Whether a final item was parsed (or memory ran out): later bytes are
  /// ignored.
  bool ended() const noexcept {
    return ended_;
  }

private:
  void take_line(const std::string& line);
  void end_with(watch_item::kind_t kind, const char* message) noexcept;

  size_t max_line_;
  std::string partial_;
  std::deque<watch_item> items_;
  bool ended_ = false;
};

} // namespace mcfg::etcd::detail
