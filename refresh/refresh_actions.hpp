#pragma once
// Refresh actions: what the refresher runs after a file was renamed into
// place, built from node.yaml's `refresh:` (refresh_spec). Each action
// returns success, or a failure whose message is one line saying what went
// wrong, e.g.
//
//   pidfile /run/memcached.pid: No such file or directory
//   pidfile /run/memcached.pid does not hold a pid
//   pid 1234 from /run/memcached.pid: No such process
//   pid 1 from /run/memcached.pid is init; refusing to signal it
//   pid 4321 from /run/memcached.pid is mcfgd itself; refusing to signal it
//   pid 1234 from /run/memcached.pid is sleep (/usr/bin/sleep), not
//     memcached; not signalled
//   pid 1234 from /run/memcached.pid runs as uid 0, but the pidfile belongs
//     to uid 104; not signalled
//   pid 1234 from /run/memcached.pid is memcached without an auth file
//     (-Y): SIGHUP would stop it; not signalled
//   command `systemctl reload memcached` exited with status 1
//   command `reload-it` killed by signal 9
//   command `reload-it` timed out after 60000ms; killed
//   command `nosuch`: No such file or directory
//
// The texts name paths, pids and the command line from node.yaml, never file
// contents or anything from the source of truth, so they hold no secret.
//
// Blocking: a signal action does a few syscalls. A command action waits for
// its command to exit — that is the point: a refresh has happened when the
// command says so — but never for ever: past `command_timeout` the command's
// whole process group is killed (SIGKILL) and reaped, and the action fails.
// The refresher runs actions on runners of their own (detached), so the
// wait never holds up a writer or the scheduler. A command still running
// when its `cancel` flag is set (the node is stopping) is killed the same
// way, within ~50 ms, so a stop never waits out a slow command.
//
// A command runs without a shell (posix_spawnp: argv[0] is looked up in PATH
// when it has no '/'), with stdin from /dev/null, stdout and stderr
// inherited, every other descriptor closed (glibc 2.34+; elsewhere only the
// CLOEXEC ones), an empty signal mask and default
// signal dispositions, in a process group of its own. Its exit is collected
// with waitpid(pid): the process must not set SIGCHLD to SIG_IGN (then the
// action reports the command as unwaitable) nor reap children it did not
// start with waitpid(-1).
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "memcached_cfg/messages/result.hpp"
#include "memcached_cfg/refresh/refresh_spec.hpp"
#include "memcached_cfg/refresh/refresher.hpp" // refresh_action

namespace mcfg {

/// How long a refresh command may run before it is killed.
inline constexpr std::chrono::milliseconds default_command_timeout
  = std::chrono::seconds(60);

/// Set when the node stops: a command under way is killed.
using cancel_flag = std::shared_ptr<const std::atomic<bool>>;

/// The action for `spec`; an empty std::function for refresh_none (the file
/// needs no refresh, and refresher_spec::actions should not list it).
refresh_action make_refresh_action(const refresh_spec& spec,
                                   std::chrono::milliseconds command_timeout
                                   = default_command_timeout,
                                   cancel_flag cancel = {});

/// The pid in the pidfile at `path`: a regular file holding a positive
/// decimal integer, whitespace around it allowed; else why not ("pidfile
/// PATH: No such file or directory", "pidfile PATH does not hold a pid").
result<pid_t> read_pidfile(const std::string& path);

/// Reads the pid in `pidfile` (a regular file holding a positive decimal
/// integer, whitespace around it allowed) and sends it `sig.signal`, unless
/// it is pid 1, this process, a process of another user than the pidfile's
/// owner (when that is not root), or (with `sig.expect` set) another
/// program than the expected one. With `expect: memcached` and SIGHUP, also
/// unless memcached's command line has no auth file (-Y): memcached 1.6
/// handles SIGHUP only then, and would otherwise stop.
result<void> send_refresh_signal(const refresh_signal& sig);

/// Runs `cmd.argv` and waits for it, at most `timeout`, and no longer than
/// until `*cancel` is set. Success when it exited with status 0.
result<void>
run_refresh_command(const refresh_command& cmd,
                    std::chrono::milliseconds timeout = default_command_timeout,
                    const std::atomic<bool>* cancel = nullptr);

/// The command as errors, logs and status show it: "command `PROG`" and how
/// many arguments follow ("with 2 arguments"), never the arguments
/// themselves: node.yaml may pass a secret to a reload script. PROG is in
/// single quotes when empty or holding a space, quote or backslash.
std::string describe_command(const std::vector<std::string>& argv);

} // namespace mcfg
