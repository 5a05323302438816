#pragma once
// One node per set of files (docs/ARCHITECTURE.md, "One node per file"): the
// locks mcfgd takes before it writes anything, and the open-files limit they
// need. Each function returns why it failed (mcfgd exits 1 with it), or
// nothing.
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "memcached_cfg/node/node_config.hpp"

namespace mcfg {

/// The locks that make this the only node on its node.yaml and on each of
/// its files, held (their descriptors open) for the process's life. The
/// kernel drops them when it exits, however it exits, so no stale lock
/// outlives a crash.
class node_locks {
public:
  node_locks() = default;
  node_locks(const node_locks&) = delete;
  node_locks& operator=(const node_locks&) = delete;
  ~node_locks();

  void hold(int fd) {
    fds_.push_back(fd);
  }

private:
  std::vector<int> fds_;
};

/// An exclusive flock on node.yaml itself (opened read-only: /etc may be; it
/// may be a link that configuration management keeps), taken before the
/// control socket is touched.
std::optional<std::string> lock_node_yaml(const node_config& cfg,
                                          node_locks& held);

/// Raises the soft limit of open files (1,024 under systemd, hard 524,288)
/// to what the folders' locks, the pool and the connections need, within
/// the hard limit; past it, says how many are needed.
std::optional<std::string> raise_open_files_limit(const node_config& cfg);

/// Each folder with files of this node holds one lock file, mcfgd.lock
/// (node_config.hpp), and each file is a byte of it (lock_byte_of), locked
/// with a POSIX record lock: two nodes may write different files of one
/// folder, never the same file; a second node on one is told the holder's
/// pid. One file created per folder, not one per file: creating thousands
/// of lock files before the first write was most of a first start. The
/// lock files that exist are locked first, so that a second node is
/// refused before it creates one of its own (or a folder). Taken once the
/// control API is up (a certificate that does not load is bad
/// configuration, found before this writes anything) and before any writer
/// starts.
std::optional<std::string> lock_files(const node_config& cfg, node_locks& held);

/// A file's byte in its folder's lock file: from a hash of its name
/// (FNV-1a), the same in every node, within what an off_t can lock.
off_t lock_byte_of(const std::string& path);

} // namespace mcfg
