#pragma once
// memcached_auth_check: the pure half of proving that a memcached enforces
// the auth file mcfgd wrote (refresh/memcached_check.hpp does the I/O). No
// I/O, no actor, no clock: every function here is a plain function of its
// arguments, so every rule is unit-tested and fuzzable.
//
// Four pieces:
// - parse_memcached_auth_file: what memcached 1.6.18 loads from a file's
//   bytes, or why it refuses the whole file (it then keeps its old users);
// - memcached_probe_plan: which logins to try so that their answers tell
//   the new file's credentials from everything memcached may still hold;
// - classify_auth_reply / auth_reply_reader: memcached's answer to one
//   login, from bytes however the network splits them;
// - judge_memcached_probes: the probes' answers, summed up in one line that
//   names users and never a password.
//
// Why probes use real credentials: memcached's ASCII auth has no "which
// table did you load" command, and a probe user of our own would take one
// of its 8 entries. A password leaves this module only inside
// memcached_auth_command's bytes, which go to memcached and nowhere else.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace mcfg {

/// One login memcached may let in.
struct memcached_credential {
  std::string user;
  std::string password;
};

inline bool operator<(const memcached_credential& x,
                      const memcached_credential& y) {
  return std::tie(x.user, x.password) < std::tie(y.user, y.password);
}

inline bool operator==(const memcached_credential& x,
                       const memcached_credential& y) {
  return x.user == y.user && x.password == y.password;
}

/// A set, not a map: memcached accepts every line of a user who appears on
/// several, so a user may have more than one password.
using memcached_credentials = std::set<memcached_credential>;

/// What memcached 1.6.18 makes of an auth file.
struct memcached_auth_file {
  /// Set when memcached refuses the whole file (AUTHFILE_MALFORMED): at
  /// start-up it exits, on SIGHUP it keeps its previous users. Names a line
  /// number, never the line's content.
  std::optional<std::string> refusal;
  /// The logins a client can use once memcached loaded the file: what it
  /// reads, less the entries no client can ever send (empty fields, spaces).
  memcached_credentials credentials;
  /// Where memcached reads the file otherwise than its lines say (users it
  /// ignores, passwords it cuts, users no client can log in as). Names users
  /// and lines, never a password.
  std::vector<std::string> problems;
};

/// What memcached 1.6.18's authfile_load() would do with a file holding
/// `bytes` (its rules: memcached_auth_check.cpp).
memcached_auth_file parse_memcached_auth_file(std::string_view bytes);

// -- planning -----------------------------------------------------------------

/// Why a probe is there; decides how a disagreement is worded.
enum class probe_kind : uint8_t {
  /// Accept: what memcached held before is unknown.
  listed,
  /// Accept: memcached may already hold this very login.
  kept,
  /// Accept: a user memcached may not know yet.
  added_user,
  /// Accept: a known user's password memcached may not know yet.
  new_password,
  /// Refuse: a user the new file no longer has.
  removed_user,
  /// Refuse: a password of a user the new file keeps with another one.
  replaced_password,
};

struct memcached_probe {
  memcached_credential credential;
  /// Whether memcached must let this login in once it loaded the new file.
  bool expect_accept = true;
  probe_kind kind = probe_kind::listed;
};

struct memcached_plan {
  /// Refuse probes first: a removed user's access is the one that matters.
  std::vector<memcached_probe> probes;
  /// No answer can tell the new table from what memcached may still hold
  /// (no refuse probe, and every accept probe memcached may already pass):
  /// e.g. a roles-only edit that rendered the same bytes.
  bool unverifiable = false;
};

/// Keeps what memcached may still enforce across versions of one file:
/// the last confirmed table (unknown until a first confirmation), and every
/// table planned since and not yet confirmed. memcached loads whole files,
/// so it holds one of these tables; `may_hold` is their union: every login
/// memcached may accept right now (plus, while unknown, a rest no probe can
/// name).
class memcached_probe_plan {
public:
  /// The probes for `next`: accept each of its logins; refuse each login of
  /// may_hold that `next` lacks. Then `next` joins the planned tables.
  /// Unverifiable when there is no refuse probe and every table memcached
  /// may hold already has every login of `next` (so no accept can fail):
  /// a roles-only edit after a confirmation, an empty table at start.
  memcached_plan plan(const memcached_credentials& next);

  /// memcached was shown to enforce `table`: it is the one table it may
  /// hold now.
  void confirmed(const memcached_credentials& table);

  /// False until the first confirmed().
  bool known() const {
    return known_;
  }

  /// Every login memcached may accept right now (as far as known()).
  const memcached_credentials& may_hold() const {
    return may_hold_;
  }

private:
  /// Whether some table memcached may hold lacks `c`.
  bool some_table_lacks(const memcached_credential& c) const;

  bool known_ = false;
  memcached_credentials confirmed_;
  std::set<memcached_credentials> planned_;
  memcached_credentials may_hold_;
};

// -- the wire -----------------------------------------------------------------

/// memcached's answer to one command of a connection not yet authenticated
/// (proto_text.c, try_read_command_asciiauth, 1.6.18).
enum class auth_reply : uint8_t {
  /// No complete answer yet, and the bytes so far may still become one.
  incomplete,
  /// `STORED`: the login is let in (nothing is stored).
  accepted,
  /// `CLIENT_ERROR authentication failure`.
  refused,
  /// `CLIENT_ERROR unauthenticated`: any command but the auth `set`.
  unauthenticated,
  /// Anything else: not an auth-enabled memcached, or a broken reply.
  unexpected,
};

/// "incomplete", "accepted", "refused", "unauthenticated", "unexpected".
const char* to_string(auth_reply x);

/// The class of the first reply line in `bytes` (everything received so
/// far): decided by the first CRLF-ended line, or `unexpected` as soon as
/// the bytes can no longer begin a known reply. Once decided, no further
/// byte changes the answer.
auth_reply classify_auth_reply(std::string_view bytes);

/// classify_auth_reply over bytes that arrive in pieces; keeps at most the
/// longest known reply's length.
class auth_reply_reader {
public:
  /// The answer so far, after `chunk` too; ignores bytes after a decision.
  auth_reply feed(std::string_view chunk);

  auth_reply state() const {
    return state_;
  }

private:
  std::string seen_;
  auth_reply state_ = auth_reply::incomplete;
};

/// Sent first on every probe connection. An auth-enabled memcached answers
/// it `CLIENT_ERROR unauthenticated`; a memcached without -Y answers with
/// its version, and then no password is sent, since there its `set` would
/// store the login as a value anyone can read.
inline constexpr std::string_view memcached_auth_gate = "version\r\n";

/// The ASCII auth command for `c`: `set mcfg_probe 0 0 N\r\nUSER PASS\r\n`.
/// Holds the password: for the socket only, never for a log.
std::string memcached_auth_command(const memcached_credential& c);

// -- judging ------------------------------------------------------------------

enum class probe_verdict : uint8_t {
  /// Every probe got the answer the new table calls for.
  agrees,
  /// memcached still enforces something else; the detail says what.
  disagrees,
  /// A probe got no auth reply (auth_reply::unexpected, ...).
  unanswered,
};

struct probe_judgement {
  probe_verdict verdict = probe_verdict::unanswered;
  /// One line, e.g. "memcached still lets in removed user bob; still
  /// refuses user carol's new password". Names users, never a password.
  std::string detail;
};

/// Sums up `replies[i]`, memcached's answer to `probes[i]`. Fewer replies
/// than probes count as unanswered.
probe_judgement
judge_memcached_probes(const std::vector<memcached_probe>& probes,
                       const std::vector<auth_reply>& replies);

/// `name` fit for a one-line message: bytes outside printable ASCII as \xNN.
std::string printable_user(std::string_view name);

} // namespace mcfg
