// The file backend in the running node: mcfgd watching its source with
// inotify, saved as editors and tools save it (renamed into place, written in
// place in slow pieces, truncated and refilled, deleted and re-created) and
// replaced by what is not a source at all (a FIFO, a symlink to /dev/zero, a
// directory, an oversized file). Real processes and files; every wait is
// bounded.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node_harness.hpp"
#include "support/process_helpers.hpp"

using namespace mcfg::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::map<std::string, std::string> users_at(int version) {
  // alice and bob always change together: a file with one of them at another
  // version than the other mixes two versions.
  return {{"alice", "a-v" + std::to_string(version)},
          {"bob", "b-v" + std::to_string(version)}};
}

/// Every distinct content the auth file held while it was sampled.
class file_sampler {
public:
  explicit file_sampler(std::string path) : path_(std::move(path)) {
    thread_ = std::thread{[this] {
      while (!stop_) {
        auto content = read_file(path_);
        {
          std::lock_guard<std::mutex> guard{mtx_};
          seen_.insert(content);
        }
        std::this_thread::sleep_for(500us);
      }
    }};
  }
  ~file_sampler() {
    stop_ = true;
    thread_.join();
  }
  std::set<std::string> seen() {
    std::lock_guard<std::mutex> guard{mtx_};
    return seen_;
  }

private:
  std::string path_;
  std::atomic<bool> stop_{false};
  std::mutex mtx_;
  std::set<std::string> seen_;
  std::thread thread_;
};

struct backend_fixture {
  temp_dir dir;
  std::string source = dir / "cluster.yaml";
  std::string auth = dir / "run/memcached.auth";
  std::unique_ptr<child_process> mcfgd;

  /// mcfgctl reaches it on its default control socket, beside node.yaml.
  explicit backend_fixture(const std::string& source_name = "cluster.yaml") {
    write_text(dir / "node.yaml", "source: " + source_name
                                    + "\n"
                                      "files:\n"
                                      "  - module: memcached_passwords\n"
                                      "    path: run/memcached.auth\n");
  }

  ~backend_fixture() {
    if (mcfgd) {
      mcfgd->signal(SIGKILL);
      mcfgd->wait_exit(5s);
    }
  }

  void start(int version) {
    write_text(source, source_of(users_at(version)));
    mcfgd = std::make_unique<child_process>(
      std::vector<std::string>{MCFGD, "--config", dir / "node.yaml"},
      dir / "mcfgd.out", dir / "mcfgd.err");
    REQUIRE(eventually([&] { return holds(version); }));
    REQUIRE(eventually([&] { return fs::exists(dir / "mcfgd.sock"); }));
  }

  bool holds(int version) {
    return read_file(auth) == auth_file_of(users_at(version));
  }

  run_result status() {
    return run(dir, {MCFGCTL, "--config", dir / "node.yaml", "--timeout", "2s",
                     "status"});
  }

  /// The source version in `mcfgctl status`; -1 when it did not answer.
  long source_version() {
    auto st = status();
    auto pos = st.out.find("  version ");
    if (st.exit_code != 0 || pos == std::string::npos)
      return -1;
    return std::stol(st.out.substr(pos + 10));
  }

  void stop() {
    mcfgd->signal(SIGTERM);
    CHECK(mcfgd->wait_exit_code(20s) == 0);
    mcfgd.reset();
  }
};

/// Writes `text` into `path` in place through one descriptor (truncate, then
/// `pieces` writes `gap` apart, then close), as `cat >` from a slow pipe.
void write_in_pieces(const std::string& path, const std::string& text,
                     size_t pieces, std::chrono::milliseconds gap) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  REQUIRE(fd >= 0);
  auto size = text.size() / pieces;
  for (size_t i = 0; i < pieces; ++i) {
    std::this_thread::sleep_for(gap);
    auto part = text.substr(i * size,
                            i + 1 == pieces ? std::string::npos : size);
    REQUIRE(::write(fd, part.data(), part.size())
            == static_cast<ssize_t>(part.size()));
  }
  ::close(fd);
}

/// An in-place save held half-written: its first part on disk (fsynced),
/// its descriptor open, the rest not written yet. mcfgd's quiet period is
/// 50 ms (node.yaml does not set it), after which a writer that stalls has
/// by the settle rule finished its save; so the save is kept under way as a
/// slow writer keeps it: every 5 ms its first byte is written again,
/// unchanged, which restarts the quiet period and leaves the bytes the half.
/// A loaded machine may still stall this thread past the quiet period: the
/// longest possible gap between two of its writes tells whether the hold
/// was kept (`longest_gap`).
class held_save {
public:
  held_save(const std::string& path, std::string half)
    : half_(std::move(half)) {
    auto before = clock::now();
    fd_ = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    REQUIRE(fd_ >= 0);
    REQUIRE(::write(fd_, half_.data(), half_.size())
            == static_cast<ssize_t>(half_.size()));
    REQUIRE(::fsync(fd_) == 0);
    thread_ = std::thread{[this, before] {
      // Each write happens between the times read around it, so the gap
      // between two is at most from the first's "before" to the next's
      // "after".
      auto last_before = before;
      while (!done_) {
        std::this_thread::sleep_for(5ms);
        auto b = clock::now();
        if (::pwrite(fd_, half_.data(), 1, 0) != 1)
          failed_ = true;
        auto a = clock::now();
        longest_ = std::max(longest_.load(), a - last_before);
        last_before = b;
      }
    }};
  }

  ~held_save() {
    stop();
    if (fd_ >= 0)
      ::close(fd_);
  }

  /// Writes the rest and closes the file: the save is complete.
  void finish(const std::string& rest) {
    stop();
    CHECK_FALSE(failed_);
    REQUIRE(
      ::pwrite(fd_, rest.data(), rest.size(), static_cast<off_t>(half_.size()))
      == static_cast<ssize_t>(rest.size()));
    REQUIRE(::close(fd_) == 0);
    fd_ = -1;
  }

  /// The longest the source may have gone without a write while held.
  std::chrono::steady_clock::duration longest_gap() const {
    return longest_;
  }

private:
  using clock = std::chrono::steady_clock;

  void stop() {
    done_ = true;
    if (thread_.joinable())
      thread_.join();
  }

  std::string half_;
  int fd_ = -1;
  std::atomic<bool> done_{false};
  std::atomic<bool> failed_{false};
  std::atomic<clock::duration> longest_{clock::duration{0}};
  std::thread thread_;
};

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("file backend: an atomic save and an in-place save in 10 slow "
          "pieces are each published once, whole") {
  backend_fixture f;
  f.start(1);
  REQUIRE(f.source_version() == 1);
  CHECK(f.status().out.find("(inotify)") != std::string::npos);

  write_atomically(f.source, source_of(users_at(2)));
  CHECK(eventually([&] { return f.holds(2); }, 2s));
  CHECK(f.source_version() == 2);

  // The source is rewritten in place, a piece every 20 ms: each prefix cut
  // at a line is valid YAML with fewer users.
  auto text = source_of(users_at(3)) + "  carol: {password: c-v3}\n";
  std::set<std::string> seen;
  {
    file_sampler sampler{f.auth};
    write_in_pieces(f.source, text, 10, 20ms);
    CHECK(eventually(
      [&] { return read_file(f.auth).find("carol") != std::string::npos; },
      2s));
    seen = sampler.seen();
  }
  auto whole = auth_file_of(users_at(3)) + "carol:c-v3\n";
  CHECK(read_file(f.auth) == whole);
  // Only the version before and the whole new one were ever in place.
  for (auto& content : seen)
    CHECK((content == auth_file_of(users_at(2)) || content == whole));
  CHECK(f.source_version() == 3);
  f.stop();
}

TEST_CASE("file backend: a save that truncates to a valid prefix and then "
          "completes never publishes the prefix") {
  backend_fixture f;
  f.start(1);
  auto prefix = std::string{"users:\n  alice: {password: a-v2}\n"};
  auto rest = std::string{"  bob: {password: b-v2}\n"};
  std::set<std::string> seen;
  {
    file_sampler sampler{f.auth};
    int fd = ::open(f.source.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, prefix.data(), prefix.size())
            == ssize_t(prefix.size()));
    std::this_thread::sleep_for(30ms);
    REQUIRE(::write(fd, rest.data(), rest.size()) == ssize_t(rest.size()));
    ::close(fd);
    CHECK(eventually([&] { return f.holds(2); }, 2s));
    seen = sampler.seen();
  }
  for (auto& content : seen)
    CHECK((content == auth_file_of(users_at(1))
           || content == auth_file_of(users_at(2))));
  CHECK(f.source_version() == 2);
  f.stop();
}

TEST_CASE("file backend: what is not a source is refused with a clear error, "
          "the last good file stays, the node answers, and a good source is "
          "then taken") {
  backend_fixture f;
  f.start(1);
  auto replace = [&](auto make) {
    auto tmp = f.dir / "replacement";
    make(tmp);
    fs::rename(tmp, f.source);
  };
  std::string expected; // what status says after the source's path
  SUBCASE("a FIFO") {
    replace(
      [](const std::string& p) { REQUIRE(::mkfifo(p.c_str(), 0600) == 0); });
    expected = ": cannot read: a FIFO, not a regular file";
  }
  SUBCASE("a symlink to /dev/zero") {
    replace([](const std::string& p) {
      REQUIRE(::symlink("/dev/zero", p.c_str()) == 0);
    });
    expected = ": cannot read: a character device, not a regular file";
  }
  SUBCASE("a directory") {
    fs::remove(f.source);
    fs::create_directory(f.source);
    expected = ": cannot read: a directory, not a regular file";
  }
  SUBCASE("an oversized file") {
    replace([](const std::string& p) {
      write_text(p, "users: {}\n");
      REQUIRE(::truncate(p.c_str(), 16 << 20 | 1) == 0);
    });
    expected
      = ": cannot read: the file is 16777217 bytes, more than the 16 MiB "
        "a source may have";
  }
  SUBCASE("a deleted source") {
    fs::remove(f.source);
    expected = ": cannot read: No such file or directory";
  }
  SUBCASE("a source with no users (not allowed by node.yaml)") {
    write_atomically(f.source, "users: {}\n");
    expected = ":1:1: users: no users: memcached would let nobody in "
               "(1.6.18) or reject the empty auth file (1.6.32 and later); "
               "set `allow_empty_users: true` in node.yaml if that is meant";
  }
  CHECK(eventually(
    [&] {
      return f.status().out.find("(edit refused: " + f.source + expected + ")")
             != std::string::npos;
    },
    2s));
  CHECK(f.holds(1));
  CHECK(f.source_version() == 1);
  // The good source comes back (re-created in place).
  fs::remove_all(f.source);
  write_text(f.source, source_of(users_at(2)));
  CHECK(eventually([&] { return f.holds(2); }, 2s));
  CHECK(f.source_version() == 2);
  CHECK(f.status().out.find("edit refused") == std::string::npos);
  f.stop();
}

TEST_CASE("file backend: a symlinked source is followed, and an edit of its "
          "target is seen") {
  backend_fixture f{"current.yaml"};
  fs::create_directory(f.dir / "data");
  f.source = f.dir / "data/cluster.yaml";
  fs::create_symlink("data/cluster.yaml", f.dir / "current.yaml");
  f.start(1);
  write_text(f.source, source_of(users_at(2))); // in place, in the target dir
  CHECK(eventually([&] { return f.holds(2); }, 2s));
  // The link re-pointed at another file, as a deployment tool does.
  write_text(f.dir / "data/next.yaml", source_of(users_at(3)));
  fs::create_symlink("data/next.yaml", f.dir / "next-link");
  fs::rename(f.dir / "next-link", f.dir / "current.yaml");
  CHECK(eventually([&] { return f.holds(3); }, 2s));
  f.source = f.dir / "data/next.yaml";
  write_text(f.source, source_of(users_at(4)));
  CHECK(eventually([&] { return f.holds(4); }, 2s));
  f.stop();
}

namespace {

/// What one round saw: a save held half-written while `how` (sync, reload
/// or SIGHUP) reached the node, then completed.
struct held_round {
  std::chrono::steady_clock::duration longest_gap{};
  long version_before = 0;
  long version_while_held = 0;
  std::string auth_while_held;
  /// mcfgctl: whether it had exited 300 ms into the hold, its exit code
  /// and output once it ended (after the save for sync).
  bool exited_while_held = false;
  std::optional<int> exit_code;
  std::string out;
  /// The auth file as mcfgctl sync returned.
  std::string auth_at_sync;
  bool whole_in_place = false;
  long version_after = 0;
  std::set<std::string> seen;
};

held_round hold_half_save(backend_fixture& f, const std::string& how,
                          const std::string& half, const std::string& rest,
                          const std::string& whole_auth, int& sighups) {
  held_round r;
  r.version_before = f.source_version();
  file_sampler sampler{f.auth};
  held_save save{f.source, half};
  std::unique_ptr<child_process> ctl;
  if (how == "SIGHUP") {
    f.mcfgd->signal(SIGHUP);
    ++sighups;
    // The node took the signal (and sent the store its reload).
    CHECK(eventually([&] {
      return count_of(read_file(f.dir / "mcfgd.err"), "received SIGHUP")
             == static_cast<size_t>(sighups);
    }));
  } else {
    ctl = std::make_unique<child_process>(
      std::vector<std::string>{MCFGCTL, "--config", f.dir / "node.yaml",
                               "--timeout", "20s", how},
      f.dir / "ctl.out", f.dir / "ctl.err");
    // A reload is answered once the store was asked (docs/control-api.md):
    // the store has it from then on. A sync is to wait for the save.
    if (how == "reload")
      r.exit_code = ctl->wait_exit_code(20s);
    else
      r.exited_while_held = ctl->wait_exit_code(300ms).has_value();
  }
  r.version_while_held = f.source_version();
  r.auth_while_held = read_file(f.auth);
  r.longest_gap = save.longest_gap();
  save.finish(rest);
  if (ctl) {
    r.exit_code = ctl->wait_exit_code(20s);
    r.out = read_file(f.dir / "ctl.out");
    r.auth_at_sync = read_file(f.auth);
  }
  r.whole_in_place = eventually([&] { return read_file(f.auth) == whole_auth; },
                                5s);
  r.seen = sampler.seen();
  r.version_after = f.source_version();
  return r;
}

} // namespace

TEST_CASE("file backend: mcfgctl sync, mcfgctl reload and SIGHUP during a "
          "half-written in-place save, 5 times each, never publish the "
          "half, and sync is answered only after the save") {
  backend_fixture f;
  f.start(1);
  // Valid YAML on its own: published, alice's password would be "wonder".
  const std::string half = "users:\n  alice:\n    password: wonder";
  const std::string half_auth = "alice:wonder\n";
  std::string last_auth = auth_file_of(users_at(1));
  int sighups = 0;
  int round = 0;
  for (std::string how : {"sync", "reload", "SIGHUP"}) {
    int held = 0;
    int stalled = 0;
    while (held < 5 && stalled < 20) {
      ++round;
      CAPTURE(round);
      CAPTURE(how);
      auto tag = std::to_string(round);
      auto rest = "land" + tag + "\n  bob:\n    password: b" + tag + "\n";
      auto whole_auth = "alice:wonderland" + tag + "\nbob:b" + tag + "\n";
      auto r = hold_half_save(f, how, half, rest, whole_auth, sighups);
      REQUIRE(r.whole_in_place);
      auto before = last_auth;
      last_auth = whole_auth;
      // The test's writer stalled past the quiet period: by the settle
      // rule the half was then a finished save. Not a round that counts.
      if (r.longest_gap >= 45ms) {
        ++stalled;
        continue;
      }
      ++held;
      REQUIRE(r.version_before > 0);
      // Nothing was published while the save was under way, and one
      // version came of it: the whole save, never the half.
      CHECK(r.version_while_held == r.version_before);
      CHECK(r.auth_while_held == before);
      CHECK(r.version_after == r.version_before + 1);
      CHECK(r.seen.count(half_auth) == 0);
      for (auto& content : r.seen)
        CHECK((content == before || content == whole_auth));
      if (how == "sync") {
        CHECK_FALSE(r.exited_while_held);
        CHECK(r.exit_code == 0);
        // The node's files have no consumer check: written and refreshed,
        // and said to be no more than that.
        CHECK(r.out.rfind("in sync:\n", 0) == 0);
        CHECK(r.out.find(" written and refreshed (no consumer check: not "
                         "confirmed)\n")
              != std::string::npos);
        CHECK(r.out.find("confirmed: ") == std::string::npos);
        CHECK(r.auth_at_sync == whole_auth); // sync waits for the file
      } else if (how == "reload") {
        CHECK(r.exit_code == 0);
        CHECK(r.out == "reload requested\n");
      }
    }
    CHECK(held == 5);
  }
  f.stop();
}
