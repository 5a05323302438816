// The watch stream's parser (etcd/detail/watch_stream.hpp) on its own, with
// no etcd running: whatever pieces libcurl cuts the bytes into, the items
// are those of the whole stream; bytes it cannot read end the stream with a
// `malformed` item, and nothing gets out of it but items.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "memcached_cfg/etcd/detail/watch_stream.hpp"

using mcfg::etcd::watch_event;
using mcfg::etcd::detail::watch_item;
using mcfg::etcd::detail::watch_stream;

namespace {

// base64 of the keys and values below (the gateway sends bytes so).
// "/u/a" "/u/b" "/u/c" "v1" "ü€" (UTF-8) "v2"
const char* const b64_ua = "L3UvYQ==";
const char* const b64_ub = "L3UvYg==";
const char* const b64_uc = "L3UvYw==";
const char* const b64_v1 = "djE=";
const char* const b64_utf8 = "w7zigqw=";
const char* const b64_v2 = "djI=";

std::string kv(const char* key, const char* value, const std::string& mod) {
  std::string out = R"({"key":")" + std::string{key} + R"(","mod_revision":)"
                    + mod;
  if (value != nullptr)
    out += R"(,"value":")" + std::string{value} + R"(","version":"1")";
  return out + "}";
}

/// created; a response of two revisions (6, then a delete and a put at 7,
/// CRLF-ended); blank lines; a progress notification; a revision whose
/// numbers are JSON numbers; the compaction, which ends the stream.
std::string stream_to_compaction() {
  std::string s;
  s += R"({"result":{"header":{"revision":"5"},"created":true}})"
       "\n";
  s += R"({"result":{"header":{"revision":"7"},"events":[)";
  s += R"({"kv":)" + kv(b64_ua, b64_v1, R"("6")") + "},";
  s += R"({"type":"DELETE","kv":)" + kv(b64_ub, nullptr, R"("7")") + "},";
  s += R"({"type":"PUT","kv":)" + kv(b64_uc, b64_utf8, R"("7")") + "}";
  s += "]}}\r\n";
  s += "\n  \t\r\n";
  s += R"({"result":{"header":{"revision":"9"}}})"
       "\n";
  s += R"({"result":{"events":[{"kv":)" + kv(b64_ua, b64_v2, "10") + "}]}}\n";
  s += R"({"result":{"canceled":true,"compact_revision":"3",)"
       R"("cancel_reason":"mvcc: required revision has been compacted"}})"
       "\n";
  return s;
}

/// A revision, then etcd's cancellation, its reason in UTF-8 (and a
/// \u escape), so that pieces cut through multi-byte characters.
std::string stream_to_cancel() {
  std::string s;
  s += R"({"result":{"created":true,"events":[{"kv":)"
       + kv(b64_ua, b64_utf8, R"("4")") + "}]}}\n";
  s += R"({"result":{"canceled":true,"cancel_reason":"r\u00e9voqu\u00e9 )"
       "— ü€ ✓\"}}\n";
  return s;
}

/// The gateway's own error, ending the stream (no trailing newline after
/// it: the connection just closes).
std::string stream_to_error() {
  return R"({"result":{"created":true}})"
         "\n"
         R"({"error":{"grpc_code":14,"http_code":503,)"
         R"("message":"etcdserver: no leader ⚠","http_status":"x"}})"
         "\n";
}

const char* kind_name(watch_item::kind_t k) {
  switch (k) {
    case watch_item::created:
      return "created";
    case watch_item::revision:
      return "revision";
    case watch_item::progress:
      return "progress";
    case watch_item::compacted:
      return "compacted";
    case watch_item::canceled:
      return "canceled";
    case watch_item::error:
      return "error";
    case watch_item::malformed:
      return "malformed";
  }
  return "?";
}

/// Every field of an item, as one line, so that vectors of items compare
/// and print.
std::string text(const watch_item& x) {
  std::ostringstream out;
  out << kind_name(x.kind);
  if (x.kind == watch_item::revision) {
    out << " " << x.batch.revision << ":";
    for (auto& ev : x.batch.events)
      out << " " << (ev.kind == watch_event::del ? "del " : "put ") << ev.kv.key
          << "=" << ev.kv.value << "@" << ev.kv.create_revision << "/"
          << ev.kv.mod_revision << "/" << ev.kv.version << "/" << ev.kv.lease;
  } else if (x.kind == watch_item::progress) {
    out << " " << x.batch.revision << " (" << x.batch.events.size()
        << " events)";
  } else if (x.kind == watch_item::compacted) {
    out << " " << x.compact_revision;
  } else if (x.kind != watch_item::created) {
    out << " " << x.message;
  }
  return out.str();
}

std::vector<std::string> drain(watch_stream& s) {
  std::vector<std::string> out;
  while (auto x = s.next())
    out.push_back(text(*x));
  return out;
}

/// The items of `bytes` fed in pieces that end at `cuts` (ascending).
std::vector<std::string> items_cut_at(const std::string& bytes,
                                      const std::vector<size_t>& cuts) {
  watch_stream s;
  size_t from = 0;
  for (auto at : cuts) {
    s.feed(std::string_view{bytes}.substr(from, at - from));
    from = at;
  }
  s.feed(std::string_view{bytes}.substr(from));
  return drain(s);
}

std::vector<std::string> items_whole(const std::string& bytes) {
  return items_cut_at(bytes, {});
}

bool is_final(const std::string& item_text) {
  return item_text.rfind("created", 0) != 0
         && item_text.rfind("revision", 0) != 0;
}

} // namespace

TEST_CASE("watch_stream: created, revisions, progress and compaction, whole") {
  std::vector<std::string> expected{
    "created",
    "revision 6: put /u/a=v1@0/6/1/0",
    "revision 7: del /u/b=@0/7/0/0 put /u/c=ü€@0/7/1/0",
    "progress 9 (0 events)",
    "revision 10: put /u/a=v2@0/10/1/0",
    "compacted 3",
  };
  watch_stream s;
  s.feed(stream_to_compaction());
  CHECK(drain(s) == expected);
  CHECK(s.ended());
  CHECK(items_whole(stream_to_cancel())
        == std::vector<std::string>{"created",
                                    "revision 4: put /u/a=ü€@0/4/1/0",
                                    "canceled révoqué — ü€ ✓"});
  CHECK(
    items_whole(stream_to_error())
    == std::vector<std::string>{"created", "error etcdserver: no leader ⚠"});
}

TEST_CASE("watch_stream: every cut into two pieces gives the whole's items") {
  for (auto& bytes :
       {stream_to_compaction(), stream_to_cancel(), stream_to_error()}) {
    auto whole = items_whole(bytes);
    for (size_t at = 0; at <= bytes.size(); ++at) {
      CAPTURE(at);
      REQUIRE(items_cut_at(bytes, {at}) == whole);
    }
  }
}

TEST_CASE("watch_stream: one byte at a time gives the whole's items") {
  for (auto& bytes :
       {stream_to_compaction(), stream_to_cancel(), stream_to_error()}) {
    std::vector<size_t> cuts;
    for (size_t at = 1; at < bytes.size(); ++at)
      cuts.push_back(at);
    CHECK(items_cut_at(bytes, cuts) == items_whole(bytes));
  }
}

TEST_CASE(
  "watch_stream: random cuts from a fixed seed give the whole's items") {
  std::minstd_rand rng{20240917};
  for (auto& bytes :
       {stream_to_compaction(), stream_to_cancel(), stream_to_error()}) {
    auto whole = items_whole(bytes);
    for (int trial = 0; trial < 500; ++trial) {
      std::uniform_int_distribution<size_t> count{1, 12};
      std::uniform_int_distribution<size_t> pos{0, bytes.size()};
      std::vector<size_t> cuts(count(rng));
      for (auto& at : cuts)
        at = pos(rng);
      std::sort(cuts.begin(), cuts.end());
      CAPTURE(trial);
      REQUIRE(items_cut_at(bytes, cuts) == whole);
    }
  }
}

TEST_CASE("watch_stream: an unreadable line ends the stream as malformed") {
  const std::string int64_max = "9223372036854775807";
  std::vector<std::string> bad{
    "garbage",
    std::string{"\x01\xff\xfe\x00\x80", 5},
    R"({"result":)",
    R"({"result":{"created":true})",
    "[1,2,3]",
    R"("a string")",
    "null",
    // Not UTF-8: a lone continuation byte, a truncated sequence, an
    // overlong encoding, in a string.
    "{\"result\":{\"cancel_reason\":\"\x80\"}}",
    "{\"result\":{\"cancel_reason\":\"\xc3\"}}",
    "{\"result\":{\"cancel_reason\":\"\xc0\xaf\"}}",
    // Numbers out of range, a fraction, digits with a tail.
    R"({"result":{"canceled":true,"compact_revision":1e400}})",
    R"({"result":{"canceled":true,"compact_revision":-1e400}})",
    R"({"result":{"events":[{"kv":{"mod_revision":1e300}}]}})",
    R"({"result":{"events":[{"kv":{"mod_revision":2.5}}]}})",
    R"({"result":{"events":[{"kv":{"mod_revision":"99999999999999999999"}}]}})",
    R"({"result":{"events":[{"kv":{"mod_revision":18446744073709551615}}]}})",
    R"({"result":{"events":[{"kv":{"mod_revision":"12abc"}}]}})",
    R"({"result":{"events":[{"kv":{"mod_revision":" 12"}}]}})",
    R"({"result":{"events":[{"kv":{"mod_revision":true}}]}})",
    // Revisions a watch cannot resume after.
    R"({"result":{"events":[{"kv":{"key":"L3UvYQ=="}}]}})",
    R"({"result":{"events":[{"kv":{"mod_revision":"0"}}]}})",
    R"({"result":{"events":[{"kv":{"mod_revision":"-4"}}]}})",
    R"({"result":{"events":[{"kv":{"mod_revision":")" + int64_max + R"("}}]}})",
    // Bytes that are not base64.
    R"({"result":{"events":[{"kv":{"key":"abc","mod_revision":"2"}}]}})",
    R"({"result":{"events":[{"kv":{"key":"!!!!","mod_revision":"2"}}]}})",
    R"({"result":{"events":[{"kv":{"value":"QQ=","mod_revision":"2"}}]}})",
    // Fields of the wrong type.
    R"({"result":[]})",
    R"({"result":"x"})",
    R"({"result":{"canceled":"yes"}})",
    R"({"result":{"created":1}})",
    R"({"result":{"events":5}})",
    R"({"result":{"events":{"a":1}}})",
    R"({"result":{"events":[5]}})",
    R"({"result":{"events":[{"type":7,"kv":{"mod_revision":"2"}}]}})",
    R"({"result":{"canceled":true,"cancel_reason":5}})",
    R"({"error":{"message":5}})",
  };
  auto after = R"({"result":{"events":[{"kv":{"mod_revision":"8"}}]}})";
  for (auto& line : bad) {
    CAPTURE(line);
    watch_stream s;
    s.feed(R"({"result":{"created":true}})"
           "\n");
    s.feed(line + "\n" + after + "\n");
    auto items = drain(s);
    REQUIRE(items.size() == 2);
    CHECK(items[0] == "created");
    CHECK(items[1].rfind("malformed etcd sent ", 0) == 0);
    CHECK(s.ended());
  }
}

TEST_CASE("watch_stream: a malformed line gives none of its revisions") {
  watch_stream s;
  s.feed(R"({"result":{"events":[{"kv":{"mod_revision":"2"}},)"
         R"({"kv":{"mod_revision":"3"}},{"kv":{"mod_revision":"x"}}]}})"
         "\n");
  auto items = drain(s);
  REQUIRE(items.size() == 1);
  CHECK(items[0].rfind("malformed", 0) == 0);
}

TEST_CASE("watch_stream: a malformed message names no byte of the line") {
  watch_stream s;
  s.feed(R"({"result":{"events":[{"kv":{"key":"c2VjcmV0","value":"s3cr3t!",)"
         R"("mod_revision":"2"}}]}})"
         "\n");
  auto items = drain(s);
  REQUIRE(items.size() == 1);
  CHECK(items[0].rfind("malformed", 0) == 0);
  CHECK(items[0].find("s3cr3t") == std::string::npos);
  CHECK(items[0].find("c2VjcmV0") == std::string::npos);
}

TEST_CASE("watch_stream: after a final item later bytes are ignored") {
  watch_stream s;
  s.feed(R"({"result":{"canceled":true,"compact_revision":"3"}})"
         "\n"
         R"({"result":{"created":true}})"
         "\nnot json\n");
  CHECK(drain(s) == std::vector<std::string>{"compacted 3"});
  s.feed("more garbage\n");
  CHECK(drain(s).empty());
}

TEST_CASE("watch_stream: cancellations, created and canceled together") {
  // etcd marks a watch refused at creation both created and canceled: it
  // is a cancellation, never a creation.
  CHECK(items_whole(R"({"result":{"created":true,"canceled":true,)"
                    R"("cancel_reason":"permission denied"}})"
                    "\n")
        == std::vector<std::string>{"canceled permission denied"});
  CHECK(items_whole(R"({"result":{"canceled":true}})"
                    "\n")
        == std::vector<std::string>{"canceled watch cancelled"});
  // A compact_revision of 0 is no compaction.
  CHECK(items_whole(R"({"result":{"canceled":true,"compact_revision":"0",)"
                    R"("cancel_reason":"gone"}})"
                    "\n")
        == std::vector<std::string>{"canceled gone"});
}

TEST_CASE("watch_stream: objects without a result or an error say nothing") {
  CHECK(items_whole("{}\n{\"header\":{}}\n{\"result\":{}}\n"
                    "{\"result\":{\"events\":null}}\n")
          .empty());
  // An incomplete last line is not a message yet.
  watch_stream s;
  s.feed(R"({"result":{"created":true}})");
  CHECK(drain(s).empty());
  s.feed("\n");
  CHECK(drain(s) == std::vector<std::string>{"created"});
}

TEST_CASE("watch_stream: a line over the limit ends the stream as malformed") {
  // Exactly the limit passes.
  std::string line = R"({"result":{"created":true}})";
  watch_stream fits{line.size()};
  fits.feed(line + "\n");
  CHECK(drain(fits) == std::vector<std::string>{"created"});
  watch_stream s{64};
  for (int i = 0; i < 20; ++i)
    s.feed("{\"x\":\"");
  auto items = drain(s);
  REQUIRE(items.size() == 1);
  CHECK(items[0].rfind("malformed", 0) == 0);
  CHECK(s.ended());
}

TEST_CASE("watch_stream: random bytes in random pieces end at one final item") {
  // Fragments of real messages among random bytes, so that some lines get
  // far into the parser before they go wrong.
  std::vector<std::string> pieces{
    R"({"result":{"created":true}})",
    R"({"result":{"events":[{"kv":{"mod_revision":"5","key":"L3UvYQ=="}}]}})",
    R"({"result":{"canceled":true,"compact_revision":)",
    R"("events":[)",
    R"({"kv":)",
    "1e400",
    "\"\\u00e9\"",
    "\xc3",
    "\n",
    "\r\n",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "null",
    "-",
    "99999999999999999999",
    "\"\\ud800\"",
    "{\"error\":",
    "\"type\":\"DELETE\""};
  std::minstd_rand rng{4711};
  std::uniform_int_distribution<int> byte{0, 255};
  std::uniform_int_distribution<size_t> pick{0, pieces.size()};
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bytes;
    auto length = std::uniform_int_distribution<int>{1, 40}(rng);
    for (int i = 0; i < length; ++i) {
      auto p = pick(rng);
      if (p == pieces.size())
        bytes += static_cast<char>(byte(rng));
      else
        bytes += pieces[p];
    }
    watch_stream s;
    std::vector<std::string> items;
    size_t from = 0;
    while (from < bytes.size()) {
      auto n = std::uniform_int_distribution<size_t>{1, 16}(rng);
      s.feed(std::string_view{bytes}.substr(from, n));
      from += n;
      for (auto& x : drain(s))
        items.push_back(x);
    }
    CAPTURE(trial);
    for (size_t i = 0; i + 1 < items.size(); ++i)
      REQUIRE_FALSE(is_final(items[i]));
    if (!items.empty() && is_final(items.back()))
      CHECK(s.ended());
  }
}
