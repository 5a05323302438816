#pragma once
// consumer_check: proof that a file's consumer enforces what the file now
// holds ("confirmed", README "Sync"), beyond having been told to re-read it.
// The refresher runs a file's check on that file's runner (a thread of its
// own: a check blocks on sockets and the file system), after each refresh
// that went through, and again every `verify_settings::interval` until the
// check agrees, the version is superseded, or `verify_settings::timeout`
// passes. A check belongs to one file; only its runner calls it, one call
// at a time, so it needs no lock.
//
// The writer library knows nothing of checks: an embedder who supplies none
// gets "written, not confirmed" (the refresh went through, no more).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/timespan.hpp>

namespace mcfg {

/// What one run of a check found.
enum class check_verdict : uint8_t {
  /// Every probe agreed with the file's content: the consumer enforces it.
  confirmed,
  /// The consumer still behaves otherwise; the detail says how, by name.
  disagrees,
  /// No probe can tell the file's content from what the consumer may still
  /// enforce (e.g. only roles changed): written, never confirmed.
  unverifiable,
  /// The check could not ask the consumer (connection refused, timeout, a
  /// reply it does not understand); the detail says why.
  unreachable,
};

/// "confirmed", "disagrees", "unverifiable", "unreachable".
const char* to_string(check_verdict x);

struct check_outcome {
  check_verdict verdict = check_verdict::unreachable;
  /// One line for logs, status and errors; names users, never a password.
  std::string detail;
};

class consumer_check {
public:
  virtual ~consumer_check() = default;

  /// The file at `path` was just refreshed: plan the probes for the content
  /// it holds now, against everything the consumer may still enforce, and
  /// run them. Blocking.
  virtual check_outcome start(const std::string& path) = 0;

  /// Runs the probes of the last start() again. Blocking.
  virtual check_outcome again() = 0;

  /// Called once when a check gives up: why the consumer may not have
  /// loaded the file (e.g. it cannot read it, or would refuse its content),
  /// or empty when nothing explains it. Blocking.
  virtual std::string diagnose(const std::string& path) = 0;
};

/// How long and how often a check is run for one version.
struct verify_settings {
  /// Between two runs of a check that did not agree yet. 40 ms, not 50:
  /// memcached applies a reload at its clock tick, and a check must see it
  /// within 50 ms of the tick even when a probe run takes a few ms
  /// (bench/README.md, "Confirmation").
  caf::timespan interval = std::chrono::milliseconds(40);
  /// From the refresh until the version is reported as not confirmed
  /// (node.yaml `verify: {timeout}`).
  caf::timespan timeout = std::chrono::seconds(5);
  /// With no agreement this long after the refresh, the refresh is sent
  /// once more, in case the consumer missed it (memcached re-reads its
  /// file on a once-a-second clock tick after the signal).
  caf::timespan resignal_after = std::chrono::milliseconds(1500);
};

} // namespace mcfg
