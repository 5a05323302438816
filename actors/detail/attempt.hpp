#pragma once
// A memcached_cfg writer's private records of its write attempts: what
// failed, what a pool job is doing, and what stays wrong until the file is
// in step again. Only actors/memcached_cfg.cpp includes this.
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>

namespace mcfg::detail {

/// Which step of an attempt failed, on which path, and what the OS said
/// (or, for a step that never returned, `note`).
struct attempt_failure {
  const char* operation;
  std::string path;
  std::error_code os_error;
  std::string note = {};

  std::string what() const {
    return note.empty() ? os_error.message() : note;
  }
};

/// One attempt handed to the pool, shared by the writer and its job: the
/// step the job is in, and whether the writer gave up on it. A job given
/// up on renames nothing; whichever of the two finishes last removes the
/// temp file.
struct attempt_ticket {
  uint64_t id = 0;
  /// The source version the bytes render.
  uint64_t version = 0;
  caf::actor_clock::time_point started;
  std::mutex mtx;
  const char* step = "queued";
  bool abandoned = false;
  bool finished = false;

  /// Whether the rename has begun (or the attempt is over): work that
  /// comes now may be news to a reader of the new content, not a burst
  /// that content missed. (A reader woken by the rename may be answered
  /// before the job's thread runs again: so the rename's start, not end.)
  bool renaming() {
    std::lock_guard<std::mutex> guard{mtx};
    return finished || std::strcmp(step, "rename") == 0
           || std::strcmp(step, "fsync") == 0;
  }
};

/// What is wrong until the file is next written: made at the first failed
/// attempt or refusal, dropped by the next successful write, so that an
/// idle writer in step (thousands of them in one node) carries none of it.
struct writer_trouble {
  /// As status shows it.
  std::string last_error;
  /// Set while the module refuses to render its state.
  caf::error refusal;
  /// The last failed attempt (meaningful while attempts fail): what a give
  /// up at the deadline names when an attempt, the retry of that failure,
  /// is still running then.
  std::optional<attempt_failure> last_failure;
};

} // namespace mcfg::detail
