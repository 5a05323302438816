// libFuzzer target: the pure half of the memcached consumer check
// (modules/memcached_auth_check): what memcached loads from an auth file's
// bytes, the probes planned from two versions of it, and memcached's replies
// to a probe, from bytes however the network splits them.
//
// Input: bytes; the first byte chooses a split point, the rest is two auth
// files separated by the first "\n--\n" (the second empty without one),
// and also memcached's reply to one probe.
//
// Properties:
// - parse_memcached_auth_file never throws; its refusal and problems do not
//   depend on the passwords' bytes (each password byte replaced by another
//   of its kind gives the same texts), so they cannot contain a password;
// - plan(before) then plan(after) accepts every login of `after` and
//   refuses every login of `before` that `after` lacks; a plan with no
//   probe is unverifiable; judging every probe as memcached would answer
//   it once it loaded `after` agrees; with every password replaced by a
//   marker of its own, the detail of a disagreement holds no marker;
// - the reply reader fed the reply in two pieces (at the chosen split) or
//   byte by byte decides what classify_auth_reply decides for the whole.
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_common.hpp"
#include "memcached_cfg/modules/memcached_auth_check.hpp"

namespace {

using namespace mcfg;

/// `text` with every byte of every password replaced by 'x': after the
/// first ':' of a line, up to the '\n', '\r' or NUL that ends the password
/// for memcached (what follows is structure, kept as it is), but for a
/// space or tab, which memcached's client treats specially.
std::string mask_passwords(std::string_view text) {
  std::string out{text};
  bool in_password = false;
  bool line_done = false;
  for (auto& c : out) {
    if (c == '\n') {
      in_password = line_done = false;
      continue;
    }
    if (c == '\r' || c == '\0') {
      in_password = false;
      line_done = true;
      continue;
    }
    if (!in_password) {
      in_password = c == ':' && !line_done;
      line_done = line_done || in_password;
      continue;
    }
    if (c != ' ' && c != '\t')
      c = 'x';
  }
  return out;
}

void check_parse_hides_passwords(std::string_view file) {
  auto real = parse_memcached_auth_file(file);
  auto masked = parse_memcached_auth_file(mask_passwords(file));
  FUZZ_CHECK(real.refusal == masked.refusal);
  FUZZ_CHECK(real.problems == masked.problems);
  // The same users log in (masking may make two passwords of one user
  // equal, so credentials are compared by user).
  std::set<std::string> real_users;
  std::set<std::string> masked_users;
  for (auto& c : real.credentials)
    real_users.insert(c.user);
  for (auto& c : masked.credentials)
    masked_users.insert(c.user);
  FUZZ_CHECK(real_users == masked_users);
}

bool has(const memcached_plan& plan, const memcached_credential& c,
         bool accept) {
  for (auto& p : plan.probes)
    if (p.credential == c && p.expect_accept == accept)
      return true;
  return false;
}

/// `tables` with each distinct password replaced by a marker of its own
/// ("\x01PW<n>\x01"), so equal passwords stay equal and no marker can
/// occur in the wording or in a shown (escaped) user name.
std::vector<memcached_credentials>
marked(const std::vector<memcached_credentials>& tables) {
  std::map<std::string, std::string> marker;
  std::vector<memcached_credentials> out;
  for (auto& table : tables) {
    memcached_credentials next;
    for (auto& c : table) {
      auto [at, fresh] = marker.emplace(c.password, "");
      if (fresh)
        at->second = "\x01PW" + std::to_string(marker.size()) + "\x01";
      next.insert({c.user, at->second});
    }
    out.push_back(std::move(next));
  }
  return out;
}

/// Whatever memcached answers, the detail of a plan from `before` to
/// `after` shows no password: with every password a marker, no marker.
void check_no_password(const memcached_credentials& before,
                       const memcached_credentials& after) {
  auto tables = marked({before, after});
  memcached_probe_plan planner;
  planner.plan(tables[0]);
  auto plan = planner.plan(tables[1]);
  // Answers as if memcached still held `before`, and all refused.
  std::vector<auth_reply> stale;
  std::vector<auth_reply> refused(plan.probes.size(), auth_reply::refused);
  for (auto& p : plan.probes)
    stale.push_back(tables[0].count(p.credential) ? auth_reply::accepted
                                                  : auth_reply::refused);
  for (auto* replies : {&stale, &refused}) {
    auto judged = judge_memcached_probes(plan.probes, *replies);
    FUZZ_CHECK(judged.detail.find("\x01PW") == std::string::npos);
  }
}

void check_plans(std::string_view first, std::string_view second) {
  auto before = parse_memcached_auth_file(first).credentials;
  auto after = parse_memcached_auth_file(second).credentials;
  memcached_probe_plan planner;
  planner.plan(before);
  auto plan = planner.plan(after);
  for (auto& c : after)
    FUZZ_CHECK(has(plan, c, true));
  for (auto& c : before)
    if (after.count(c) == 0)
      FUZZ_CHECK(has(plan, c, false));
  if (plan.probes.empty())
    FUZZ_CHECK(plan.unverifiable);
  // memcached, having loaded `after`, answers each probe by that table.
  std::vector<auth_reply> loaded;
  for (auto& p : plan.probes)
    loaded.push_back(after.count(p.credential) ? auth_reply::accepted
                                               : auth_reply::refused);
  FUZZ_CHECK(judge_memcached_probes(plan.probes, loaded).verdict
             == probe_verdict::agrees);
  check_no_password(before, after);
}

void check_reply(std::string_view reply, size_t split) {
  auto whole = classify_auth_reply(reply);
  split = reply.empty() ? 0 : split % (reply.size() + 1);
  auth_reply_reader two;
  two.feed(reply.substr(0, split));
  FUZZ_CHECK(two.feed(reply.substr(split)) == whole);
  auth_reply_reader bytewise;
  for (char c : reply)
    bytewise.feed(std::string_view{&c, 1});
  FUZZ_CHECK(bytewise.state() == whole);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  auto split = static_cast<size_t>(data[0]);
  auto text = mcfg_fuzz::as_text(data + 1, size - 1);
  auto sep = text.find("\n--\n");
  auto first = text.substr(0, sep);
  auto second = sep == std::string_view::npos ? std::string_view{}
                                              : text.substr(sep + 4);
  check_parse_hides_passwords(first);
  check_parse_hides_passwords(second);
  check_plans(first, second);
  check_reply(text, split);
  return 0;
}
