#include "memcached_cfg/modules/memcached_auth_check.hpp"

#include <algorithm>
#include <array>

// parse_memcached_auth_file replays memcached 1.6.18's authfile_load()
// (authfile.c, l.31-108) step by step over the file's bytes, rather than
// restating its rules, because its quirks come from the exact arithmetic:
//
// - the buffer is calloc(st_size + 1) and each line is read with
//   fgets(cur, min(end - cur, MAX_ENTRY_LEN = 256)), where end is
//   buffer + st_size. After a line, `cur` moves to the byte that ended the
//   password (its '\n'), not past it, so the next read starts one byte
//   early and the room left shrinks by one byte less than was read. A
//   one-line file is therefore read one byte short: harmless when that
//   byte is the final newline, a cut password when the file has none. A
//   file of one byte gets fgets(size 1), which glibc answers with an empty
//   string: a line without ':', AUTHFILE_MALFORMED. An empty file gets
//   fgets(size 0), which returns NULL: zero users, AUTHFILE_OK.
// - fgets reads at most 255 bytes: a longer line is cut, and the cut, ending
//   in the NUL fgets adds, is taken for the end of file: later lines are
//   ignored. NUL bytes from the file are data to fgets and the end of the
//   file to the scan.
// - the user name runs to the first ':' of the line; a NUL (or the end of
//   what fgets read) before any ':' makes the file AUTHFILE_MALFORMED: a
//   blank line, a line without ':'. The password runs to the first '\n',
//   '\r' or NUL; after a '\r' the rest of the line is dropped.
// - at the 8th entry (`++used == MAX_ENTRIES`) reading stops.
// - duplicate users are all kept; authfile_check() accepts any entry whose
//   user and password match in full (length and bytes).
//
// The client side (proto_text.c, try_read_command_asciiauth, l.322-432):
// the payload `USER PASS` is split by tokenize_command() at spaces only,
// skipping empty tokens, and authfile_check(tokens[0], tokens[1]) compares
// whole tokens. So a login with a space in it, or an empty user or password,
// can never be sent: it is left out of the credentials (and reported).
// Replies: `STORED` when let in (the payload is not stored: the connection
// becomes authenticated), `CLIENT_ERROR authentication failure` otherwise
// (the connection stays open), `CLIENT_ERROR unauthenticated` for any other
// command, `CLIENT_ERROR bad ...` for a malformed auth command; over 2048
// bytes without a newline the connection is closed.
//
// These were checked by running this parser and 1.6.18's authfile.c, built
// against glibc, over the same random files, and against the daemon (the
// end-to-end test tests/e2e/memcached_check_test.cpp).

namespace mcfg {

namespace {

constexpr long max_entry_len = 256; // authfile.c MAX_ENTRY_LEN
constexpr int max_entries = 8; // authfile.c MAX_ENTRIES

/// glibc's fgets(buf + at, n, file) over `file` from `pos`: false for NULL;
/// else stores the bytes and a NUL and sets `count` to the bytes stored.
bool emulate_fgets(std::string_view file, size_t& pos, std::string& buf,
                   size_t at, long n, size_t& count) {
  if (n <= 0)
    return false;
  count = 0;
  if (n == 1) { // glibc: room for the NUL only, nothing is read
    buf[at] = '\0';
    return true;
  }
  while (count < static_cast<size_t>(n - 1) && pos < file.size()) {
    char c = file[pos++];
    buf[at + count++] = c;
    if (c == '\n')
      break;
  }
  if (count == 0)
    return false;
  buf[at + count] = '\0';
  return true;
}

std::string line_name(int line) {
  return "line " + std::to_string(line);
}

bool sendable(const memcached_credential& c) {
  // tokenize_command() splits at spaces and skips empty tokens.
  return !c.user.empty() && !c.password.empty()
         && c.user.find(' ') == std::string::npos
         && c.password.find(' ') == std::string::npos;
}

/// Reports and drops a login memcached loaded but no client can send.
void admit(memcached_auth_file& out, memcached_credential c, int line) {
  if (sendable(c)) {
    out.credentials.insert(std::move(c));
    return;
  }
  auto who = c.user.empty() ? "the user on " + line_name(line)
                            : "user " + printable_user(c.user) + " ("
                                + line_name(line) + ")";
  out.problems.push_back(
    "no client can ever log in as " + who
    + ": memcached splits the login at spaces, so an empty field or a space "
      "in one never matches");
}

/// One line memcached read, as its scan left it.
struct scanned_line {
  bool found = false; // a ':' came before the end
  size_t ulen = 0;
  size_t end = 0; // index of the byte that ended the password
};

scanned_line scan(const std::string& buf, size_t cur) {
  scanned_line s;
  for (long x = 0; x < max_entry_len; ++x) {
    char c = buf[cur + static_cast<size_t>(x)];
    if (!s.found) {
      if (c == '\0')
        break;
      if (c == ':') {
        s.found = true;
        s.ulen = static_cast<size_t>(x);
      }
    } else if (c == '\n' || c == '\r' || c == '\0') {
      s.end = static_cast<size_t>(x);
      break;
    }
  }
  return s;
}

/// Why reading stopped at a password that ended in NUL while the file goes
/// on; nothing when all that is left is the line's own end.
std::optional<std::string> early_end(std::string_view file, size_t pos,
                                     size_t count, const scanned_line& s,
                                     const std::string& user, int line) {
  auto where = line_name(line) + " (user " + printable_user(user) + ")";
  if (s.end < count) // a NUL byte of the file's own
    return "a NUL byte ends the password on " + where
           + ": memcached cuts it there and ignores the rest of the file";
  // fgets stopped before the line's end: its 255 bytes, or the room left.
  auto rest = file.substr(pos);
  bool cut = !rest.empty() && rest[0] != '\n' && rest[0] != '\r';
  auto newline = rest.find('\n');
  bool more = newline != std::string_view::npos && newline + 1 < rest.size();
  if (cut)
    return "memcached reads only the first " + std::to_string(count)
           + " characters of " + where
           + ": it would cut the password and ignore the rest of the file";
  if (more)
    return "memcached stops reading at " + where
           + " and would ignore the rest of the file";
  return std::nullopt;
}

} // namespace

memcached_auth_file parse_memcached_auth_file(std::string_view file) {
  memcached_auth_file out;
  std::string buf(file.size() + 1, '\0');
  const size_t end = file.size();
  size_t cur = 0;
  size_t pos = 0;
  size_t count = 0;
  int used = 0;
  int line = 0;
  for (;;) {
    long room = static_cast<long>(end - cur);
    if (!emulate_fgets(file, pos, buf, cur, std::min(room, max_entry_len),
                       count))
      break;
    ++line;
    auto s = scan(buf, cur);
    if (!s.found) {
      out.refusal = line_name(line)
                    + " has no ':' (a blank line, a line without one, or a "
                      "NUL byte before it): memcached refuses the whole file";
      out.credentials.clear();
      out.problems.clear();
      return out;
    }
    memcached_credential c{buf.substr(cur, s.ulen),
                           buf.substr(cur + s.ulen + 1, s.end - s.ulen - 1)};
    auto user = c.user;
    admit(out, std::move(c), line);
    if (++used == max_entries) {
      if (pos < file.size())
        out.problems.push_back("memcached reads at most 8 users and would "
                               "ignore the rest of the file, after "
                               + line_name(line));
      break;
    }
    if (buf[cur + s.end] == '\0') {
      if (auto why = early_end(file, pos, count, s, user, line))
        out.problems.push_back(std::move(*why));
      break;
    }
    if (buf[cur + s.end] == '\r'
        && !(s.end + 2 == count && buf[cur + s.end + 1] == '\n'))
      out.problems.push_back("memcached ends user " + printable_user(user)
                             + "'s password at a carriage return on "
                             + line_name(line)
                             + " and drops the rest of that line");
    cur += s.end;
  }
  return out;
}

} // namespace mcfg

// -- memcached_probe_plan -----------------------------------------------------

namespace mcfg {

namespace {

std::set<std::string> users_of(const memcached_credentials& xs) {
  std::set<std::string> out;
  for (auto& x : xs)
    out.insert(x.user);
  return out;
}

} // namespace

bool memcached_probe_plan::some_table_lacks(
  const memcached_credential& c) const {
  if (!known_ || confirmed_.count(c) == 0)
    return true;
  return std::any_of(planned_.begin(), planned_.end(),
                     [&c](auto& table) { return table.count(c) == 0; });
}

memcached_plan memcached_probe_plan::plan(const memcached_credentials& next) {
  memcached_plan out;
  auto next_users = users_of(next);
  auto held_users = users_of(may_hold_);
  for (auto& c : may_hold_) {
    if (next.count(c) != 0)
      continue;
    auto kind = next_users.count(c.user) != 0 ? probe_kind::replaced_password
                                              : probe_kind::removed_user;
    out.probes.push_back({c, false, kind});
  }
  bool informative = !out.probes.empty();
  for (auto& c : next) {
    auto kind = probe_kind::kept;
    if (may_hold_.count(c) == 0) {
      if (held_users.count(c.user) != 0)
        kind = probe_kind::new_password;
      else
        kind = known_ ? probe_kind::added_user : probe_kind::listed;
    } else if (!known_) {
      kind = probe_kind::listed;
    }
    informative = informative || some_table_lacks(c);
    out.probes.push_back({c, true, kind});
  }
  out.unverifiable = !informative;
  planned_.insert(next);
  may_hold_.insert(next.begin(), next.end());
  return out;
}

void memcached_probe_plan::confirmed(const memcached_credentials& table) {
  known_ = true;
  confirmed_ = table;
  planned_.clear();
  may_hold_ = table;
}

// -- replies ------------------------------------------------------------------

namespace {

constexpr std::string_view reply_stored = "STORED";
constexpr std::string_view reply_failure
  = "CLIENT_ERROR authentication failure";
constexpr std::string_view reply_unauthenticated
  = "CLIENT_ERROR unauthenticated";

struct known_reply {
  std::string_view line;
  auth_reply kind;
};

constexpr std::array<known_reply, 3> known_replies{{
  {reply_stored, auth_reply::accepted},
  {reply_failure, auth_reply::refused},
  {reply_unauthenticated, auth_reply::unauthenticated},
}};

/// The longest known reply with its CRLF: a prefix this long is decided.
constexpr size_t longest_reply = reply_failure.size() + 2;

} // namespace

const char* to_string(auth_reply x) {
  switch (x) {
    case auth_reply::incomplete:
      return "incomplete";
    case auth_reply::accepted:
      return "accepted";
    case auth_reply::refused:
      return "refused";
    case auth_reply::unauthenticated:
      return "unauthenticated";
    case auth_reply::unexpected:
      return "unexpected";
  }
  return "unexpected";
}

auth_reply classify_auth_reply(std::string_view bytes) {
  if (auto crlf = bytes.find("\r\n"); crlf != std::string_view::npos) {
    auto line = bytes.substr(0, crlf);
    for (auto& known : known_replies)
      if (line == known.line)
        return known.kind;
    return auth_reply::unexpected;
  }
  // No complete line: still undecided while the bytes may begin a known
  // reply (its line, then CR, then LF).
  for (auto& known : known_replies) {
    auto full = std::string{known.line} + "\r\n";
    if (bytes.size() < full.size() && full.compare(0, bytes.size(), bytes) == 0)
      return auth_reply::incomplete;
  }
  return auth_reply::unexpected;
}

auth_reply auth_reply_reader::feed(std::string_view chunk) {
  if (state_ != auth_reply::incomplete)
    return state_;
  // Past longest_reply bytes every input is decided, so a bounded prefix
  // of the chunk gives the same answer as all of it.
  seen_.append(chunk.substr(0, longest_reply - seen_.size()));
  state_ = classify_auth_reply(seen_);
  return state_;
}

std::string memcached_auth_command(const memcached_credential& c) {
  auto payload = c.user + ' ' + c.password;
  return "set mcfg_probe 0 0 " + std::to_string(payload.size()) + "\r\n"
         + payload + "\r\n";
}

// -- judging ------------------------------------------------------------------

namespace {

/// What memcached still does when `p` got the opposite of what it expects.
std::string disagreement(const memcached_probe& p) {
  auto user = printable_user(p.credential.user);
  switch (p.kind) {
    case probe_kind::listed:
    case probe_kind::kept:
      return p.expect_accept ? "still refuses user " + user
                             : "still lets in user " + user;
    case probe_kind::added_user:
      return "still refuses new user " + user;
    case probe_kind::new_password:
      return "still refuses user " + user + "'s new password";
    case probe_kind::removed_user:
      return "still lets in removed user " + user;
    case probe_kind::replaced_password:
      return "still lets in " + user + "'s replaced password";
  }
  return "disagrees about user " + user;
}

std::string agreement(const std::vector<memcached_probe>& probes) {
  auto accepts = std::count_if(probes.begin(), probes.end(),
                               [](auto& p) { return p.expect_accept; });
  auto refuses = static_cast<long>(probes.size()) - accepts;
  auto out = "memcached lets in the file's " + std::to_string(accepts)
             + (accepts == 1 ? " login" : " logins");
  if (refuses > 0)
    out += " and refuses the " + std::to_string(refuses)
           + " removed or replaced";
  return out;
}

} // namespace

probe_judgement
judge_memcached_probes(const std::vector<memcached_probe>& probes,
                       const std::vector<auth_reply>& replies) {
  std::vector<std::string> seen;
  for (size_t i = 0; i < probes.size(); ++i) {
    auto reply = i < replies.size() ? replies[i] : auth_reply::incomplete;
    auto& p = probes[i];
    if (reply != auth_reply::accepted && reply != auth_reply::refused)
      return {probe_verdict::unanswered,
              "the login of user " + printable_user(p.credential.user)
                + " got no auth reply (" + to_string(reply) + ")"};
    if ((reply == auth_reply::accepted) == p.expect_accept)
      continue;
    auto what = disagreement(p);
    if (std::find(seen.begin(), seen.end(), what) == seen.end())
      seen.push_back(std::move(what));
  }
  if (seen.empty())
    return {probe_verdict::agrees, agreement(probes)};
  std::string detail = "memcached";
  for (size_t i = 0; i < seen.size(); ++i)
    detail += (i == 0 ? " " : "; ") + seen[i];
  return {probe_verdict::disagrees, std::move(detail)};
}

std::string printable_user(std::string_view name) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : name) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

} // namespace mcfg
