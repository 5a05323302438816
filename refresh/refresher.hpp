#pragma once
// refresher: tells consumers to re-read their files after a rename (signal a
// pid from a pidfile, run a command, ...). It never blocks a rename and holds
// no lock: on POSIX a reader that opened the old file keeps reading the old
// inode, so a refresh and a rename need no order between them (README,
// "Refresh").
//
// Per file: one runner (a detached actor, its own thread) runs that file's
// action, so a slow command delays no other file's refresh and never the
// refresher itself. A request while the file's refresh runs queues exactly
// one more run after it (requests coalesce); a failed run is retried after a
// backoff that doubles from `backoff_min` to `backoff_max`.
//
// A file may also have a consumer check (consumer_check.hpp): after each
// refresh that went through, the refresher has the file's runner run it,
// again every `job.verify.interval` until it agrees (the version is confirmed),
// says no probe can tell (unverifiable), or `job.verify.timeout` passes
// (failed, with the check's diagnosis). With no agreement after
// `job.verify.resignal_after`, the refresh action is run once more. A newer
// rename during a check supersedes it: the check starts again for the newer
// version.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "memcached_cfg/messages/atoms.hpp"
#include "memcached_cfg/messages/node_status.hpp"
#include "memcached_cfg/messages/result.hpp"
#include "memcached_cfg/refresh/consumer_check.hpp"

namespace mcfg {

using refresher_actor = caf::typed_actor<
  // The file at this path was renamed into place holding this version:
  // refresh its consumer.
  caf::reacts_to<refresh_atom, std::string, uint64_t>,
  // Asked once the file holds this version or a later one. Without a check:
  // answered (applied) once its consumer has re-read the file: at once for a
  // file without a refresh action or with nothing owed, else after the owed
  // refresh; with its error (refresh_failed) when that run fails. With a
  // check: answered (confirmed) once the consumer was shown to enforce this
  // version or a later one; (unverifiable) when the check of the file's
  // content says no probe can tell; with verify_failed when it gave up. A
  // version past the last rename heard changed nothing in this file (roles
  // only): answered from that rename's verdict, unverifiable when it was
  // confirmed. After a restart (no rename heard yet) the check of the
  // start's refresh covers whatever the file holds. With refresher_stopped
  // when the refresher stops first. A failed refresh that waits for its
  // retry is retried at once for the sync.
  caf::replies_to<sync_atom, std::string, uint64_t>::with<file_sync>,
  caf::replies_to<status_atom>::with<std::vector<refresh_status>>>;

/// One refresh: success, or what went wrong (no secrets).
using refresh_action = std::function<result<void>()>;

/// run: perform the action once; answered with its result.
using run_atom = caf::atom_constant<caf::atom("run")>;

/// verify(path, start): run the file's check (start: plan it afresh).
using verify_atom = caf::atom_constant<caf::atom("verify")>;
/// diagnose(path): why the consumer may not have loaded the file.
using diagnose_atom = caf::atom_constant<caf::atom("diagnose")>;

/// One file's refresh: the action, and the consumer check if it has one.
struct refresh_job {
  refresh_action action;
  /// Shared by the runners of every refresher incarnation, so that what it
  /// knows of the consumer survives a restart; only the current runner
  /// calls it.
  std::shared_ptr<consumer_check> check;
  /// How often and how long `check` runs for one version.
  verify_settings verify;
};

/// Runs one file's refresh action and check, one call at a time. A run's
/// answer is the action's result as a message can carry it: empty on
/// success, else the failure's message. A verify's answer is the check's
/// verdict (check_verdict as a number) and detail.
using refresh_runner = caf::typed_actor<
  caf::replies_to<run_atom>::with<std::string>,
  caf::replies_to<verify_atom, std::string, bool>::with<uint8_t, std::string>,
  caf::replies_to<diagnose_atom, std::string>::with<std::string>>;

/// A runner for `job`: detached (a thread of its own, for actions that
/// block), or scheduled like any actor (tests under the test_coordinator).
refresh_runner spawn_refresh_runner(caf::actor_system& sys, refresh_job job,
                                    bool detached);

struct refresher_spec {
  /// The job per file path; a path without one needs no refresh.
  std::map<std::string, refresh_job> jobs;
  /// A failed refresh is retried after `backoff_min`, then after twice the
  /// previous wait, up to `backoff_max`.
  caf::timespan backoff_min = std::chrono::seconds(1);
  caf::timespan backoff_max = std::chrono::seconds(30);
  /// Refresh every file once at start: a restarted refresher cannot know
  /// which requests its dead incarnation lost, and a spare re-read is
  /// harmless.
  bool refresh_on_start = false;
  /// Told one file's refresh status (as `status` answers it) whenever it
  /// may have changed, with the refresher's clock time (mcfgd's
  /// status_board). Called on the refresher's thread; must not block or
  /// throw.
  std::function<void(refresh_status, caf::actor_clock::time_point)> publish;
  /// Starts the runner of one file's job; detached runners when empty.
  /// The refresher links to its runners: they stop with it.
  std::function<refresh_runner(caf::actor_system&, const std::string& path,
                               refresh_job)>
    spawn_runner;
};

/// The wait before the retry that follows `failures` failed runs in a row
/// (1 for the first failure).
caf::timespan refresh_backoff(const refresher_spec& spec, uint32_t failures);

refresher_actor spawn_refresher(caf::actor_system& sys, refresher_spec spec);

} // namespace mcfg
