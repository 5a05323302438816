// The default sink's journal priorities: stderr is really redirected to a
// temp file here, and JOURNAL_STREAM set as systemd would for a service.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "memcached_cfg/messages/log.hpp"
#include "support/temp_dir.hpp"

using namespace mcfg;

namespace {

/// stderr goes to `path` while this lives; JOURNAL_STREAM is as given
/// (nothing = unset), restored after.
class stderr_to_file {
public:
  stderr_to_file(const std::string& path) : saved_fd_(::dup(2)) {
    auto fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    ::dup2(fd, 2);
    ::close(fd);
    if (auto old = std::getenv("JOURNAL_STREAM"))
      saved_env_ = old;
  }
  ~stderr_to_file() {
    ::dup2(saved_fd_, 2);
    ::close(saved_fd_);
    if (saved_env_)
      ::setenv("JOURNAL_STREAM", saved_env_->c_str(), 1);
    else
      ::unsetenv("JOURNAL_STREAM");
  }

  /// "<device>:<inode>" of what fd 2 is now.
  static std::string stream_of_stderr() {
    struct stat st;
    REQUIRE(::fstat(2, &st) == 0);
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }

private:
  int saved_fd_;
  std::optional<std::string> saved_env_;
};

struct log_state_guard {
  log::level saved = log::current_level();
  log::sink saved_sink = log::set_sink(nullptr);
  ~log_state_guard() {
    log::set_level(saved);
    log::set_sink(saved_sink);
  }
};

} // namespace

TEST_CASE("syslog priorities: error 3, warning 4, info 6, debug 7") {
  CHECK(log::syslog_priority(log::level::error) == 3);
  CHECK(log::syslog_priority(log::level::warning) == 4);
  CHECK(log::syslog_priority(log::level::info) == 6);
  CHECK(log::syslog_priority(log::level::debug) == 7);
}

TEST_CASE("when stderr is the journal, each line starts with its priority") {
  log_state_guard levels;
  log::set_level(log::level::debug);
  test::temp_dir dir;
  auto out = dir / "stderr";
  {
    stderr_to_file redirect{out};
    ::setenv("JOURNAL_STREAM", stderr_to_file::stream_of_stderr().c_str(), 1);
    CHECK(log::stderr_is_journal());
    log::error("writer /a", "rename failed");
    log::warning("writer /a", "retrying");
    log::info("mcfgd", "running");
    log::debug("store", "version 2");
  }
  CHECK(test::read_file(out)
        == "<3>[error] writer /a: rename failed\n"
           "<4>[warning] writer /a: retrying\n"
           "<6>[info] mcfgd: running\n"
           "<7>[debug] store: version 2\n");
}

TEST_CASE("without the journal, lines carry no priority prefix") {
  log_state_guard levels;
  log::set_level(log::level::info);
  test::temp_dir dir;
  auto out = dir / "stderr";
  SUBCASE("JOURNAL_STREAM unset") {
    stderr_to_file redirect{out};
    ::unsetenv("JOURNAL_STREAM");
    CHECK_FALSE(log::stderr_is_journal());
    log::warning("mcfgd", "plain");
  }
  SUBCASE("JOURNAL_STREAM inherited, but stderr redirected elsewhere") {
    stderr_to_file redirect{out};
    struct stat st;
    REQUIRE(::stat(dir.path.c_str(), &st) == 0); // another inode
    auto other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    ::setenv("JOURNAL_STREAM", other.c_str(), 1);
    CHECK_FALSE(log::stderr_is_journal());
    log::warning("mcfgd", "plain");
  }
  SUBCASE("JOURNAL_STREAM malformed") {
    stderr_to_file redirect{out};
    ::setenv("JOURNAL_STREAM", "not-a-stream", 1);
    CHECK_FALSE(log::stderr_is_journal());
    log::warning("mcfgd", "plain");
  }
  CHECK(test::read_file(out) == "[warning] mcfgd: plain\n");
}

TEST_CASE("journal_prefix: the priority for the journal, nothing elsewhere") {
  test::temp_dir dir;
  stderr_to_file redirect{dir / "stderr"};
  ::setenv("JOURNAL_STREAM", stderr_to_file::stream_of_stderr().c_str(), 1);
  CHECK(log::journal_prefix(log::level::error) == "<3>");
  CHECK(log::journal_prefix(log::level::debug) == "<7>");
  ::unsetenv("JOURNAL_STREAM");
  CHECK(log::journal_prefix(log::level::error).empty());
}

TEST_CASE("a sink receives lines without the journal's prefix") {
  log_state_guard levels;
  test::temp_dir dir;
  std::string seen;
  log::set_sink([&](log::level, const std::string& line) { seen = line; });
  stderr_to_file redirect{dir / "stderr"};
  ::setenv("JOURNAL_STREAM", stderr_to_file::stream_of_stderr().c_str(), 1);
  log::warning("mcfgd", "to the sink");
  CHECK(seen == "[warning] mcfgd: to the sink");
  CHECK(test::read_file(dir / "stderr").empty());
}

TEST_CASE("a name with a newline and a priority yields exactly one journal "
          "line, with the level's priority only") {
  log_state_guard levels;
  test::temp_dir dir;
  {
    stderr_to_file redirect{dir / "stderr"};
    ::setenv("JOURNAL_STREAM", stderr_to_file::stream_of_stderr().c_str(), 1);
    log::warning("writer x\n<0>evil", "refused user x\n<0>evil\r\n<1>more");
  }
  auto text = test::read_file(dir / "stderr");
  CHECK(text
        == "<4>[warning] writer x\\n<0>evil: refused user "
           "x\\n<0>evil\\r\\n<1>more\n");
  CHECK(text.find('\n') == text.size() - 1);
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.rfind("<0>", 0) == std::string::npos);
}

TEST_CASE("escape: every C0 control byte and DEL is escaped, printable ASCII "
          "is kept") {
  for (int c = 0; c < 0x20; ++c) {
    CAPTURE(c);
    auto out = log::escape(std::string(1, static_cast<char>(c)));
    if (c == '\n')
      CHECK(out == "\\n");
    else if (c == '\r')
      CHECK(out == "\\r");
    else if (c == '\t')
      CHECK(out == "\\t");
    else {
      static const char hex[] = "0123456789abcdef";
      CHECK(out == std::string{"\\x"} + hex[c >> 4] + hex[c & 0xf]);
    }
  }
  CHECK(log::escape("\x7f") == "\\x7f");
  CHECK(log::escape(std::string{"a\0b", 3}) == "a\\x00b");
  std::string ascii;
  for (int c = 0x20; c < 0x7f; ++c)
    ascii += static_cast<char>(c);
  CHECK(log::escape(ascii) == ascii);
}

TEST_CASE("escape: valid UTF-8 is kept, invalid bytes and C1 controls are "
          "escaped byte by byte") {
  // é, €, 𝄞: two, three and four bytes.
  CHECK(log::escape("jos\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e")
        == "jos\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e");
  CHECK(log::escape("jos\xe9") == "jos\\xe9"); // Latin-1
  CHECK(log::escape("\xc3") == "\\xc3"); // cut short
  CHECK(log::escape("\xc0\xaf") == "\\xc0\\xaf"); // overlong '/'
  CHECK(log::escape("\xed\xa0\x80") == "\\xed\\xa0\\x80"); // a surrogate
  CHECK(log::escape("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80"); // >10FFFF
  CHECK(log::escape("\xc2\x9b[2J") == "\\xc2\\x9b[2J"); // C1 CSI
  CHECK(log::escape("\xc2\xa0") == "\xc2\xa0"); // U+00A0 is no control
  CHECK(log::escape("\xff\xfe") == "\\xff\\xfe");
}

TEST_CASE("format_line escapes the component and the message, never the "
          "level") {
  CHECK(log::format_line(log::level::error, "a\nb", "c\x1b[31m")
        == "[error] a\\nb: c\\x1b[31m");
  CHECK(log::format_line(log::level::info, "", "") == "[info] : ");
}
