#pragma once
// A network namespace of a test's own, for partition tests: the test case
// runs this executable again under `unshare -n` (root only), where nothing
// but the test's own processes has an address, brings loopback up with the
// addresses it asks for, and cuts links with nftables. When the case's
// process and its children end, the namespace goes with them; the outer
// process checks that no process is left in it. Sleeps and polling are
// allowed here: this is a helper for tests (and the benchmark) against real
// processes; it throws std::runtime_error rather than assert, so both can
// use it.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/process_helpers.hpp"
#include "support/temp_dir.hpp"

namespace mcfg::test::netns {

/// Set in the environment of the copy that runs inside the namespace.
inline constexpr const char* inside_variable = "MCFG_TEST_IN_NETNS";
/// Where the copy inside writes its namespace's inode, for the check that
/// it is gone.
inline constexpr const char* inode_variable = "MCFG_TEST_NETNS_INODE_FILE";

/// Whether this process is the copy running inside the test's namespace.
inline bool inside() {
  return std::getenv(inside_variable) != nullptr;
}

/// Whether namespaces can be made here (root, and unshare, ip and nft
/// installed).
inline bool available() {
  return ::geteuid() == 0 && ::access("/usr/bin/unshare", X_OK) == 0
         && ::access("/usr/sbin/ip", X_OK) == 0
         && ::access("/usr/sbin/nft", X_OK) == 0;
}

/// The inode of the network namespace `pid` is in (0: none readable).
inline ino_t namespace_of(const std::string& pid) {
  struct stat st {};
  auto path = "/proc/" + pid + "/ns/net";
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

/// Whether any process is still in the namespace `inode`.
inline bool anyone_in(ino_t inode) {
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    if (namespace_of(name) == inode)
      return true;
  }
  return false;
}

/// Runs `cmd` inside the namespace; its output goes to the test's log.
/// Throws when it does not exit 0.
inline void must(std::vector<std::string> cmd) {
  std::string text;
  for (auto& c : cmd)
    text += " " + c;
  child_process proc{std::move(cmd)};
  auto rc = proc.wait_exit_code(std::chrono::seconds(10));
  if (rc != 0)
    throw std::runtime_error("failed:" + text);
}

/// Inside: loopback up, with `addresses` (each /32) on it; records the
/// namespace for the outer process.
inline void set_up(const std::vector<std::string>& addresses) {
  must({"/usr/sbin/ip", "link", "set", "lo", "up"});
  for (auto& a : addresses)
    must({"/usr/sbin/ip", "addr", "add", a + "/32", "dev", "lo"});
  if (auto* file = std::getenv(inode_variable))
    write_text(file, std::to_string(namespace_of("self")));
}

/// Replaces nftables table `table` with an output-hook chain of `rules`
/// at `priority`.
inline void load_table(const temp_dir& dir, const std::string& table,
                       int priority, const std::vector<std::string>& rules) {
  std::string script = "table inet " + table + "\ndelete table inet " + table
                       + "\ntable inet " + table
                       + " {\n  chain out {\n    type filter hook output "
                         "priority "
                       + std::to_string(priority) + ";\n";
  for (auto& r : rules)
    script += "    " + r + "\n";
  script += "  }\n}\n";
  auto file = dir / (table + ".nft");
  write_text(file, script);
  must({"/usr/sbin/nft", "-f", file});
}

/// Inside, before the processes connect: rules that set conntrack marks
/// (e.g. "meta skuid 0 tcp dport 2379 ct mark set 2"), so that a later cut
/// can drop both ways of the connections a process made. A mark set only
/// at the cut would let the first segment towards it through, since it is
/// the process's reply that would set it.
inline void mark(const temp_dir& dir, const std::vector<std::string>& rules) {
  load_table(dir, "marks", -10, rules);
}

/// Inside: replaces the cut with `rules`, lines of an output-hook chain
/// (e.g. "ct mark 2 drop"); none: every packet passes.
inline void cut(const temp_dir& dir, const std::vector<std::string>& rules) {
  load_table(dir, "partition", 0, rules);
}

/// Inside: every packet passes again.
inline void heal(const temp_dir& dir) {
  cut(dir, {});
}

/// How a run inside a namespace of its own went.
struct inside_result {
  int exit_code = -2;
  /// The copy inside recorded its namespace, and it was not this one.
  bool own_namespace = false;
  /// No process is left in that namespace: it is gone.
  bool namespace_gone = false;
};

/// Outside: runs `args` (this executable again, say, with the options that
/// pick the case) inside a namespace of its own, its output inherited,
/// and says how it ended.
inline inside_result run_inside(std::vector<std::string> args) {
  temp_dir dir;
  auto inode_file = dir / "netns.inode";
  ::setenv(inside_variable, "1", 1);
  ::setenv(inode_variable, inode_file.c_str(), 1);
  args.insert(args.begin(), {"/usr/bin/unshare", "-n", "--"});
  inside_result out;
  {
    child_process proc{std::move(args)};
    out.exit_code = proc.wait_exit_code(std::chrono::minutes(5)).value_or(-3);
  }
  ::unsetenv(inside_variable);
  ::unsetenv(inode_variable);
  auto inode = read_file(inode_file);
  if (inode.empty()
      || inode.find_first_not_of("0123456789") != std::string::npos)
    return out;
  auto ino = static_cast<ino_t>(std::stoull(inode));
  out.own_namespace = ino != namespace_of("self");
  // Every process of the run is gone, so the namespace is.
  out.namespace_gone = !anyone_in(ino);
  return out;
}

/// This executable's path, to run it again inside.
inline std::string self_exe() {
  return std::filesystem::read_symlink("/proc/self/exe").string();
}

} // namespace mcfg::test::netns
