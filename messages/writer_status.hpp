#pragma once
// The answer to `status`: what a writer is doing, never a secret.
#include <cstdint>
#include <map>
#include <string>

#include <caf/meta/type_name.hpp>
#include <caf/timestamp.hpp>

namespace mcfg {

enum class writer_phase : uint8_t {
  idle, ///< the file reflects the latest state
  pending, ///< a write is owed and queued
  retrying, ///< the last attempt failed; a retry timer is armed
};

const char* to_string(writer_phase x);

struct writer_status {
  std::string path;
  /// The source version the file holds (0: not written by this incarnation
  /// yet).
  uint64_t applied_version = 0;
  writer_phase phase = writer_phase::idle;
  /// Failed attempts since the last change.
  uint32_t attempts = 0;
  /// Id of the armed retry timer; 0 when none is armed.
  uint64_t retry_timer = 0;
  /// Empty when the last attempt succeeded.
  std::string last_error;
  caf::timespan since_last_change{0};
  /// Negative when the file was never written by this incarnation.
  caf::timespan since_last_write{-1};
  uint64_t changes = 0; ///< events that changed the module's state
  uint64_t ignored = 0; ///< events filtered out or without effect
  uint64_t writes = 0; ///< files renamed into place
  uint64_t failed_attempts = 0; ///< attempts that failed, in total
  /// The module's own view of its state, secrets redacted (format_status).
  std::map<std::string, std::string> module;
  /// Across incarnations: restarts after giving up since the file was last
  /// written, why the last incarnation gave up, and how long attempts have
  /// been failing (negative when the last attempt succeeded). A fault that
  /// never clears shows here rather than as a silent restart loop.
  uint32_t restarts = 0;
  std::string last_give_up;
  caf::timespan failing_for{-1};
  /// A writer with an I/O pool: how long its attempt has been running
  /// there (negative when none runs) and the step it is in ("queued",
  /// "mkdir", "write", "rename", "fsync"), so that a stuck disk shows.
  caf::timespan attempt_running_for{-1};
  std::string attempt_step;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, writer_status& x) {
  return f(caf::meta::type_name("writer_status"), x.path, x.applied_version,
           x.phase, x.attempts, x.retry_timer, x.last_error,
           x.since_last_change, x.since_last_write, x.changes, x.ignored,
           x.writes, x.failed_attempts, x.module, x.restarts, x.last_give_up,
           x.failing_for, x.attempt_running_for, x.attempt_step);
}

} // namespace mcfg
