// The pure half of the memcached consumer check: how memcached 1.6.18 reads
// an auth file, which logins to probe for a new version, how a reply is
// classified from bytes cut anywhere, and how answers are summed up. No
// message here may hold a password: every test that builds one asserts it.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "memcached_cfg/modules/memcached_auth_check.hpp"
#include "memcached_cfg/modules/memcached_passwords.hpp"
#include "support/user_value.hpp"

using namespace mcfg;

namespace {

memcached_credentials creds(std::initializer_list<memcached_credential> xs) {
  return memcached_credentials{xs};
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// Fails when `text` holds any of `secrets`.
void check_no_secret(const std::string& text,
                     const std::vector<std::string>& secrets) {
  CAPTURE(text);
  for (auto& s : secrets)
    CHECK_FALSE(contains(text, s));
}

void check_no_secret(const memcached_auth_file& f,
                     const std::vector<std::string>& secrets) {
  if (f.refusal)
    check_no_secret(*f.refusal, secrets);
  for (auto& p : f.problems)
    check_no_secret(p, secrets);
}

/// The probes of `plan` as "+user:pw" (accept) and "-user:pw" (refuse).
std::vector<std::string> shown(const memcached_plan& plan) {
  std::vector<std::string> out;
  for (auto& p : plan.probes)
    out.push_back((p.expect_accept ? "+" : "-") + p.credential.user + ":"
                  + p.credential.password);
  return out;
}

probe_kind kind_of(const memcached_plan& plan, const std::string& user,
                   const std::string& password) {
  for (auto& p : plan.probes)
    if (p.credential.user == user && p.credential.password == password)
      return p.kind;
  FAIL("no probe for " << user);
  return probe_kind::listed;
}

/// `n` random bytes, biased towards the bytes of memcached's replies.
std::string random_reply_bytes(std::mt19937& rng) {
  static const std::vector<std::string> pieces{
    "STORED",
    "CLIENT_ERROR authentication failure",
    "CLIENT_ERROR unauthenticated",
    "\r\n",
    "\r",
    "\n",
    "CLIENT_ERROR ",
    "STO",
    "VERSION 1.6.18"};
  std::string out;
  auto parts = rng() % 4;
  for (unsigned i = 0; i < parts; ++i) {
    if (rng() % 3 == 0) {
      out += static_cast<char>(rng() % 256);
    } else {
      auto& piece = pieces[rng() % pieces.size()];
      out += piece.substr(0, rng() % 4 == 0 ? rng() % (piece.size() + 1)
                                            : piece.size());
    }
  }
  return out;
}

} // namespace

TEST_SUITE("memcached auth file as memcached 1.6.18 reads it") {
  TEST_CASE("two users are read as written, with nothing to report") {
    auto f = parse_memcached_auth_file("alice:pw-a\nbob:pw-b\n");
    CHECK_FALSE(f.refusal);
    CHECK(f.problems.empty());
    CHECK(f.credentials == creds({{"alice", "pw-a"}, {"bob", "pw-b"}}));
  }

  TEST_CASE("an empty file loads no user and is not refused") {
    auto f = parse_memcached_auth_file("");
    CHECK_FALSE(f.refusal);
    CHECK(f.credentials.empty());
    CHECK(f.problems.empty());
  }

  TEST_CASE("a one-byte file is refused as malformed") {
    // fgets(buf, 1) answers an empty string: a line without ':'.
    auto f = parse_memcached_auth_file("\n");
    REQUIRE(f.refusal);
    CHECK(contains(*f.refusal, "line 1"));
    CHECK(f.credentials.empty());
  }

  TEST_CASE("a blank line or a line without ':' refuses the whole file, "
            "naming the line and not its content") {
    auto blank = parse_memcached_auth_file("alice:s3cret\n\nbob:pw-b\n");
    REQUIRE(blank.refusal);
    CHECK(contains(*blank.refusal, "line 2"));
    CHECK(blank.credentials.empty());
    CHECK(blank.problems.empty());
    auto no_colon = parse_memcached_auth_file(
      "alice:s3cret\nbob:x\nsecrettext\n");
    REQUIRE(no_colon.refusal);
    CHECK(contains(*no_colon.refusal, "line 3"));
    check_no_secret(no_colon, {"s3cret", "secrettext"});
    auto nul_in_name = parse_memcached_auth_file(std::string{"al\0ce:pw\n", 9});
    CHECK(nul_in_name.refusal);
  }

  TEST_CASE("a 9th user is ignored and reported, without passwords") {
    std::string text;
    for (int i = 1; i <= 9; ++i)
      text += "u" + std::to_string(i) + ":secret" + std::to_string(i) + "\n";
    auto f = parse_memcached_auth_file(text);
    CHECK_FALSE(f.refusal);
    CHECK(f.credentials.size() == 8);
    CHECK(f.credentials.count({"u9", "secret9"}) == 0);
    REQUIRE(f.problems.size() == 1);
    CHECK(contains(f.problems[0], "at most 8"));
    check_no_secret(f, {"secret"});
  }

  TEST_CASE("exactly 8 users are read with nothing to report") {
    std::string text;
    for (int i = 1; i <= 8; ++i)
      text += "u" + std::to_string(i) + ":p" + std::to_string(i) + "\n";
    auto f = parse_memcached_auth_file(text);
    CHECK(f.credentials.size() == 8);
    CHECK(f.problems.empty());
  }

  TEST_CASE("a line over 255 characters cuts the password and ends the "
            "file, reported by user name only") {
    std::string long_pw(300, 'x');
    auto f = parse_memcached_auth_file("alice:" + long_pw + "\nbob:pw-b\n");
    CHECK_FALSE(f.refusal);
    // 255 characters read: "alice:" and 249 of the password.
    CHECK(f.credentials == creds({{"alice", std::string(249, 'x')}}));
    REQUIRE(f.problems.size() == 1);
    CHECK(contains(f.problems[0], "user alice"));
    CHECK(contains(f.problems[0], "255"));
    check_no_secret(f, {"xxxxxxxx", "pw-b"});
  }

  TEST_CASE("a line of 256 characters keeps its password and ends the "
            "file") {
    // "alice:" + 249 + "\n": fgets reads all but the newline.
    std::string pw(249, 'x');
    auto f = parse_memcached_auth_file("alice:" + pw + "\nbob:pw-b\n");
    CHECK(f.credentials == creds({{"alice", pw}}));
    REQUIRE(f.problems.size() == 1);
    CHECK(contains(f.problems[0], "stops reading at line 1 (user alice)"));
    auto fits = parse_memcached_auth_file("alice:" + pw.substr(1)
                                          + "\nbob:b\n");
    CHECK(fits.credentials.size() == 2);
    CHECK(fits.problems.empty());
  }

  TEST_CASE("a one-line file without a final newline loses the password's "
            "last character") {
    auto f = parse_memcached_auth_file("alice:pw");
    CHECK(f.credentials == creds({{"alice", "p"}}));
    REQUIRE(f.problems.size() == 1);
    CHECK(contains(f.problems[0], "user alice"));
    for (auto text : {"alice:pw\n", "alice:pw\r"}) {
      auto ended = parse_memcached_auth_file(text);
      CHECK(ended.credentials == creds({{"alice", "pw"}}));
      CHECK(ended.problems.empty());
    }
  }

  TEST_CASE("a later last line without a newline is read in full") {
    auto f = parse_memcached_auth_file("alice:pw-a\nbob:pw-b");
    CHECK(f.credentials == creds({{"alice", "pw-a"}, {"bob", "pw-b"}}));
    CHECK(f.problems.empty());
  }

  TEST_CASE("CRLF line ends end the password at the CR, silently") {
    auto f = parse_memcached_auth_file("alice:pw-a\r\nbob:pw-b\r\n");
    CHECK(f.credentials == creds({{"alice", "pw-a"}, {"bob", "pw-b"}}));
    CHECK(f.problems.empty());
  }

  TEST_CASE("a NUL byte in a password cuts it and ends the file") {
    auto f = parse_memcached_auth_file(
      std::string{"alice:pw\0xy\nbob:b\n", 18});
    CHECK(f.credentials == creds({{"alice", "pw"}}));
    REQUIRE(f.problems.size() == 1);
    CHECK(contains(f.problems[0], "NUL"));
    CHECK(contains(f.problems[0], "user alice"));
  }

  TEST_CASE("a ':' in a password is part of it") {
    auto f = parse_memcached_auth_file("alice:a:b\nbob:c\n");
    CHECK(f.credentials == creds({{"alice", "a:b"}, {"bob", "c"}}));
  }

  TEST_CASE("logins no client can send are left out and reported") {
    auto f = parse_memcached_auth_file(
      "alice:two words\n:nameless\nbob:\ncarol:pw-c\n");
    CHECK_FALSE(f.refusal);
    CHECK(f.credentials == creds({{"carol", "pw-c"}}));
    CHECK(f.problems.size() == 3);
    check_no_secret(f, {"two words", "nameless"});
  }

  TEST_CASE("a user on two lines may log in with either password") {
    auto f = parse_memcached_auth_file("alice:one\nalice:two\n");
    CHECK(f.credentials == creds({{"alice", "one"}, {"alice", "two"}}));
  }

  TEST_CASE("every file memcached_passwords renders is read back as its "
            "users, with nothing to report") {
    std::mt19937 rng{20};
    for (int round = 0; round < 300; ++round) {
      snapshot source;
      std::map<std::string, std::string> users;
      auto n = rng() % 9;
      for (unsigned i = 0; i < n; ++i) {
        auto name = "u" + std::to_string(rng() % 1000);
        auto pw = std::string(1 + rng() % 200,
                              static_cast<char>('!' + rng() % 90));
        if (name.size() + pw.size() + 2 > memcached_auth_max_line)
          continue;
        users[name] = pw;
        source["users/" + name] = test::user(pw);
      }
      memcached_passwords m;
      m.init(source);
      auto r = m.produce();
      REQUIRE(r.what() == rendering::kind::content);
      auto f = parse_memcached_auth_file(r.text());
      CHECK_FALSE(f.refusal);
      CHECK(f.problems.empty());
      memcached_credentials expected;
      for (auto& [name, pw] : users)
        expected.insert({name, pw});
      CHECK(f.credentials == expected);
    }
  }

} // TEST_SUITE

TEST_SUITE("memcached probe plan") {
  TEST_CASE("at start, with what memcached holds unknown, only accept probes") {
    memcached_probe_plan plan;
    auto p = plan.plan(creds({{"alice", "pw-a"}, {"bob", "pw-b"}}));
    CHECK(shown(p) == std::vector<std::string>{"+alice:pw-a", "+bob:pw-b"});
    CHECK_FALSE(p.unverifiable);
    CHECK(kind_of(p, "alice", "pw-a") == probe_kind::listed);
    CHECK_FALSE(plan.known());
  }

  TEST_CASE("an empty table at start is unverifiable, with no probe") {
    memcached_probe_plan plan;
    auto p = plan.plan({});
    CHECK(p.probes.empty());
    CHECK(p.unverifiable);
  }

  TEST_CASE("an added user is an accept probe, and nothing is refused") {
    memcached_probe_plan plan;
    plan.confirmed(creds({{"alice", "pw-a"}}));
    auto p = plan.plan(creds({{"alice", "pw-a"}, {"bob", "pw-b"}}));
    CHECK(shown(p) == std::vector<std::string>{"+alice:pw-a", "+bob:pw-b"});
    CHECK(kind_of(p, "alice", "pw-a") == probe_kind::kept);
    CHECK(kind_of(p, "bob", "pw-b") == probe_kind::added_user);
    CHECK_FALSE(p.unverifiable);
  }

  TEST_CASE("a changed password: refuse the old one, accept the new one") {
    memcached_probe_plan plan;
    plan.confirmed(creds({{"alice", "old"}}));
    auto p = plan.plan(creds({{"alice", "new"}}));
    CHECK(shown(p) == std::vector<std::string>{"-alice:old", "+alice:new"});
    CHECK(kind_of(p, "alice", "old") == probe_kind::replaced_password);
    CHECK(kind_of(p, "alice", "new") == probe_kind::new_password);
    CHECK_FALSE(p.unverifiable);
  }

  TEST_CASE("a removed user is a refuse probe") {
    memcached_probe_plan plan;
    plan.confirmed(creds({{"alice", "pw-a"}, {"bob", "pw-b"}}));
    auto p = plan.plan(creds({{"alice", "pw-a"}}));
    CHECK(shown(p) == std::vector<std::string>{"-bob:pw-b", "+alice:pw-a"});
    CHECK(kind_of(p, "bob", "pw-b") == probe_kind::removed_user);
    CHECK_FALSE(p.unverifiable);
  }

  TEST_CASE("a roles-only edit, the same logins as confirmed, is "
            "unverifiable") {
    memcached_probe_plan plan;
    plan.confirmed(creds({{"alice", "pw-a"}}));
    auto p = plan.plan(creds({{"alice", "pw-a"}}));
    CHECK(p.unverifiable);
    CHECK(shown(p) == std::vector<std::string>{"+alice:pw-a"});
  }

  TEST_CASE("a superseded version keeps the refuse probes of both") {
    memcached_probe_plan plan;
    plan.confirmed(creds({{"alice", "a1"}, {"bob", "b1"}}));
    auto first = plan.plan(creds({{"alice", "a1"}})); // bob removed
    CHECK(shown(first) == std::vector<std::string>{"-bob:b1", "+alice:a1"});
    // Not confirmed: memcached may hold either table.
    auto second = plan.plan(creds({{"alice", "a2"}}));
    CHECK(shown(second)
          == std::vector<std::string>{"-alice:a1", "-bob:b1", "+alice:a2"});
    CHECK(plan.may_hold()
          == creds({{"alice", "a1"}, {"alice", "a2"}, {"bob", "b1"}}));
    plan.confirmed(creds({{"alice", "a2"}}));
    CHECK(plan.may_hold() == creds({{"alice", "a2"}}));
    CHECK(plan.plan(creds({{"alice", "a2"}})).unverifiable);
  }

  TEST_CASE("the same logins again before a confirmation stay verifiable") {
    // memcached may still hold the confirmed table, which lacks bob.
    memcached_probe_plan plan;
    plan.confirmed(creds({{"alice", "a"}}));
    CHECK_FALSE(plan.plan(creds({{"alice", "a"}, {"bob", "b"}})).unverifiable);
    CHECK_FALSE(plan.plan(creds({{"alice", "a"}, {"bob", "b"}})).unverifiable);
    // And at start: memcached may hold some unknown table.
    memcached_probe_plan fresh;
    CHECK_FALSE(fresh.plan(creds({{"alice", "a"}})).unverifiable);
    CHECK_FALSE(fresh.plan(creds({{"alice", "a"}})).unverifiable);
  }

} // TEST_SUITE

TEST_SUITE("memcached probe judgement") {
  TEST_CASE("answers as expected agree") {
    memcached_probe_plan plan;
    plan.confirmed(creds({{"alice", "a1"}, {"bob", "b1"}}));
    auto p = plan.plan(creds({{"alice", "a2"}}));
    std::vector<auth_reply> replies;
    for (auto& probe : p.probes)
      replies.push_back(probe.expect_accept ? auth_reply::accepted
                                            : auth_reply::refused);
    auto j = judge_memcached_probes(p.probes, replies);
    CHECK(j.verdict == probe_verdict::agrees);
    CHECK(j.detail
          == "memcached lets in the file's 1 login and refuses the 2 "
             "removed or replaced");
  }

  TEST_CASE("disagreements name users by what memcached still does, never "
            "a password") {
    memcached_probe_plan plan;
    plan.confirmed(creds({{"bob", "s3cret-b"},
                          {"carol", "s3cret-c1"},
                          {"dave", "s3cret-d1"},
                          {"erin", "s3cret-e"}}));
    auto p = plan.plan(creds(
      {{"carol", "s3cret-c2"}, {"dave", "s3cret-d2"}, {"erin", "s3cret-e"}}));
    // memcached answers as if it still held the old table.
    std::vector<auth_reply> replies;
    auto old = creds({{"bob", "s3cret-b"},
                      {"carol", "s3cret-c1"},
                      {"dave", "s3cret-d1"},
                      {"erin", "s3cret-e"}});
    for (auto& probe : p.probes)
      replies.push_back(old.count(probe.credential) != 0 ? auth_reply::accepted
                                                         : auth_reply::refused);
    auto j = judge_memcached_probes(p.probes, replies);
    CHECK(j.verdict == probe_verdict::disagrees);
    CHECK(j.detail
          == "memcached still lets in removed user bob; still lets in carol's "
             "replaced password; still lets in dave's replaced password; "
             "still refuses user carol's new password; still refuses user "
             "dave's new password");
    check_no_secret(j.detail, {"s3cret"});
    // erin's unchanged login was let in, as expected: not named.
    CHECK_FALSE(contains(j.detail, "erin"));
  }

  TEST_CASE("the wording of each kind of disagreement") {
    memcached_probe_plan plan;
    plan.confirmed(creds({{"bob", "b"}}));
    auto p = plan.plan(creds({{"bob", "b"}, {"new", "n"}}));
    auto j = judge_memcached_probes(p.probes,
                                    {auth_reply::refused, auth_reply::refused});
    CHECK(j.detail
          == "memcached still refuses user bob; still refuses new user new");
  }

  TEST_CASE("a reply that is no auth reply, or a missing one, is unanswered") {
    memcached_probe_plan plan;
    auto p = plan.plan(creds({{"alice", "pw-secret"}, {"bob", "pw-b"}}));
    auto j = judge_memcached_probes(p.probes, {auth_reply::accepted,
                                               auth_reply::unexpected});
    CHECK(j.verdict == probe_verdict::unanswered);
    CHECK(contains(j.detail, "user bob"));
    check_no_secret(j.detail, {"pw-secret", "pw-b"});
    auto short_replies = judge_memcached_probes(p.probes,
                                                {auth_reply::accepted});
    CHECK(short_replies.verdict == probe_verdict::unanswered);
  }

  TEST_CASE("user names are shown with control bytes escaped") {
    CHECK(printable_user(std::string{"a\rb\0c", 5}) == "a\\x0db\\x00c");
    CHECK(printable_user("plain-name") == "plain-name");
  }

} // TEST_SUITE

TEST_SUITE("memcached auth replies") {
  TEST_CASE("memcached's three replies to a client not yet authenticated") {
    CHECK(classify_auth_reply("STORED\r\n") == auth_reply::accepted);
    CHECK(classify_auth_reply("CLIENT_ERROR authentication failure\r\n")
          == auth_reply::refused);
    CHECK(classify_auth_reply("CLIENT_ERROR unauthenticated\r\n")
          == auth_reply::unauthenticated);
  }

  TEST_CASE("a beginning of a reply is incomplete, anything else "
            "unexpected") {
    CHECK(classify_auth_reply("") == auth_reply::incomplete);
    CHECK(classify_auth_reply("STO") == auth_reply::incomplete);
    CHECK(classify_auth_reply("STORED\r") == auth_reply::incomplete);
    CHECK(classify_auth_reply("CLIENT_ERROR ") == auth_reply::incomplete);
    CHECK(classify_auth_reply("STORED\n") == auth_reply::unexpected);
    CHECK(classify_auth_reply("STOREX") == auth_reply::unexpected);
    CHECK(classify_auth_reply("VERSION 1.6.18\r\n") == auth_reply::unexpected);
    CHECK(classify_auth_reply("ERROR\r\n") == auth_reply::unexpected);
    CHECK(classify_auth_reply("CLIENT_ERROR bad command line termination\r\n")
          == auth_reply::unexpected);
    // The first line decides; what follows it does not change the answer.
    CHECK(classify_auth_reply("STORED\r\njunk") == auth_reply::accepted);
  }

  TEST_CASE("once decided, no further byte changes the class") {
    std::mt19937 rng{7};
    for (int round = 0; round < 3000; ++round) {
      auto bytes = random_reply_bytes(rng);
      auto whole = classify_auth_reply(bytes);
      for (size_t i = 0; i <= bytes.size(); ++i) {
        auto part = classify_auth_reply(bytes.substr(0, i));
        if (part != auth_reply::incomplete) {
          CAPTURE(bytes);
          CHECK(part == whole);
        }
      }
    }
  }

  TEST_CASE("the reader gives the same class for every split of the bytes") {
    std::mt19937 rng{11};
    for (int round = 0; round < 2000; ++round) {
      auto bytes = random_reply_bytes(rng);
      auto whole = classify_auth_reply(bytes);
      CAPTURE(bytes);
      for (size_t i = 0; i <= bytes.size(); ++i) {
        auth_reply_reader reader;
        reader.feed(std::string_view{bytes}.substr(0, i));
        CHECK(reader.feed(std::string_view{bytes}.substr(i)) == whole);
      }
      // And byte by byte.
      auth_reply_reader reader;
      for (char c : bytes)
        reader.feed(std::string_view{&c, 1});
      CHECK(reader.state() == whole);
    }
  }

  TEST_CASE("the auth command carries the login as memcached's set") {
    CHECK(memcached_auth_command({"alice", "pw-a"})
          == "set mcfg_probe 0 0 10\r\nalice pw-a\r\n");
    CHECK(memcached_auth_gate == "version\r\n");
  }

} // TEST_SUITE
