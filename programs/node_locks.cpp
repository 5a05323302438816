#include "memcached_cfg/programs/node_locks.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "memcached_cfg/actors/file_port.hpp"

namespace mcfg {

namespace {

/// ", pid N": the process holding a flock on `st`'s file, as /proc/locks
/// shows it ("1: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF"); "" when
/// it cannot tell.
std::string flock_holder(const struct stat& st) {
  std::ifstream in{"/proc/locks"};
  char id[64];
  std::snprintf(id, sizeof(id), "%02x:%02x:%ju", major(st.st_dev),
                minor(st.st_dev), static_cast<uintmax_t>(st.st_ino));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words{line};
    std::string number, kind, advisory, mode, pid, where;
    words >> number >> kind >> advisory >> mode >> pid >> where;
    if (kind == "FLOCK" && where == id) // "->" lines are waiters: skipped
      return ", pid " + pid;
  }
  return {};
}

/// A POSIX record lock of `type` on [start, start + len) of a folder lock
/// (len 0: to the end of every possible offset).
struct flock range_of(short type, off_t start, off_t len) {
  struct flock range {};
  range.l_type = type;
  range.l_whence = SEEK_SET;
  range.l_start = start;
  range.l_len = len;
  return range;
}

bool set_lock(int fd, short type, off_t start, off_t len) {
  auto range = range_of(type, start, len);
  return ::fcntl(fd, F_SETLK, &range) == 0;
}

/// Takes the byte of `path` in the folder lock open as `fd`; a byte another
/// node holds is tried again for a moment, since a node that is starting
/// holds the whole range for as long as it takes to give back the gaps
/// (lock_folder).
std::optional<std::string> lock_one_byte(int fd, const std::string& path) {
  auto byte = lock_byte_of(path);
  auto lock = folder_lock_of(path);
  for (int tries = 0;; ++tries) {
    if (set_lock(fd, F_WRLCK, byte, 1))
      return std::nullopt;
    if (errno != EACCES && errno != EAGAIN)
      return "could not start: cannot lock " + path + " in " + lock + ": "
             + std::strerror(errno);
    if (tries == 20)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto who = range_of(F_WRLCK, byte, 1);
  std::string holder;
  if (::fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK)
    holder = ", pid " + std::to_string(who.l_pid);
  return "could not start: " + path + " is in use by another mcfgd" + holder
         + " (lock " + lock + "); nothing written";
}

/// Locks the bytes of `paths` (one folder's files) in its lock, open as
/// `fd`. The kernel keeps a file's record locks in one list and walks all
/// of it for each new lock: 10,000 bytes locked one by one took 0.3-0.7 s.
/// So when no other node holds a byte of the folder, the whole range is
/// taken at once and the gaps between this node's bytes are given back from
/// the top down, each unlock splitting the one range at the head of the
/// list: linear. Otherwise (another node writes files of this folder) byte
/// by byte, from the top down.
std::optional<std::string>
lock_folder(int fd, const std::vector<const std::string*>& paths) {
  std::vector<std::pair<off_t, const std::string*>> bytes;
  bytes.reserve(paths.size());
  for (auto* path : paths)
    bytes.emplace_back(lock_byte_of(*path), path);
  std::sort(bytes.begin(), bytes.end(),
            [](auto& x, auto& y) { return x.first > y.first; });
  if (!set_lock(fd, F_WRLCK, 0, 0)) {
    for (auto& [byte, path] : bytes)
      if (auto why = lock_one_byte(fd, *path))
        return why;
    return std::nullopt;
  }
  off_t above = -1; // the lowest byte kept so far; -1: none yet
  for (auto& [byte, path] : bytes) {
    if (byte == above)
      continue; // two names on one byte (a 1 in 2^62 chance)
    bool ok = above < 0
                ? set_lock(fd, F_UNLCK, byte + 1, 0)
                : (above == byte + 1
                   || set_lock(fd, F_UNLCK, byte + 1, above - byte - 1));
    if (!ok)
      return "could not start: cannot lock " + *path + " in "
             + folder_lock_of(*path) + ": " + std::strerror(errno);
    above = byte;
  }
  if (above > 0 && !set_lock(fd, F_UNLCK, 0, above))
    return "could not start: cannot lock " + *bytes.back().second + " in "
           + folder_lock_of(*bytes.back().second) + ": " + std::strerror(errno);
  return std::nullopt;
}

} // namespace

node_locks::~node_locks() {
  for (int fd : fds_)
    ::close(fd);
}

off_t lock_byte_of(const std::string& path) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : std::filesystem::path{path}.filename().string())
    h = (h ^ c) * 1099511628211ull;
  // 62 bits: two names share a byte only by a 1 in 2^62 chance, and then
  // merely exclude each other's nodes.
  return static_cast<off_t>(h >> 2);
}

std::optional<std::string> lock_node_yaml(const node_config& cfg,
                                          node_locks& held) {
  const auto& path = cfg.config_file;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return "could not start: cannot open " + path
           + " to lock it: " + std::strerror(errno);
  held.hold(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0)
    return std::nullopt;
  if (errno != EWOULDBLOCK)
    return "could not start: cannot lock " + path + ": " + std::strerror(errno);
  struct stat st {};
  auto holder = ::fstat(fd, &st) == 0 ? flock_holder(st) : std::string{};
  return "could not start: " + path + " is in use by another mcfgd" + holder
         + "; nothing written";
}

std::optional<std::string> raise_open_files_limit(const node_config& cfg) {
  // A lock per folder; per pool thread a temp file and a folder at most;
  // the rest is headroom for connections (API clients, etcd, memcached
  // probes) and libraries.
  std::unordered_set<std::string> folders;
  for (auto& file : cfg.files)
    folders.insert(folder_lock_of(file.path));
  rlim_t need = folders.size() + 2 * cfg.io_threads + 256;
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= need)
    return std::nullopt;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < need)
    return "could not start: the files' " + std::to_string(folders.size())
           + " folders need up to " + std::to_string(need)
           + " open files, and the hard limit (RLIMIT_NOFILE) is "
           + std::to_string(lim.rlim_max)
           + "; raise it (LimitNOFILE= in the unit, or ulimit -Hn); nothing "
             "written";
  lim.rlim_cur = need;
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0)
    return "could not start: cannot raise the open files limit to "
           + std::to_string(need) + ": " + std::strerror(errno)
           + "; nothing written";
  return std::nullopt;
}

std::optional<std::string> lock_files(const node_config& cfg,
                                      node_locks& held) {
  // The descriptor of each folder's lock stays open for the node's life and
  // is opened once: closing any descriptor of a file drops all of a
  // process's record locks on it.
  std::vector<std::string> folders; // in order of first use
  std::unordered_map<std::string, std::vector<const std::string*>> files_of;
  for (auto& file : cfg.files) {
    auto lock = folder_lock_of(file.path);
    auto& files = files_of[lock];
    if (files.empty())
      folders.push_back(lock);
    files.push_back(&file.path);
  }
  // Those that exist first, so that a second node is refused before it
  // creates a lock file of its own (or a folder).
  std::vector<const std::string*> missing;
  for (auto& lock : folders) {
    int fd = ::open(lock.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      missing.push_back(&lock);
      continue;
    }
    if (fd < 0)
      return "could not start: cannot open " + lock
             + " to lock its files: " + std::strerror(errno);
    held.hold(fd);
    if (auto why = lock_folder(fd, files_of[lock]))
      return why;
  }
  auto files = make_posix_file_port();
  for (auto* lock : missing) {
    auto dir = std::string{std::filesystem::path{*lock}.parent_path()};
    if (auto ec = files->make_directories(dir))
      return "could not start: mkdir " + dir + ": " + ec.message();
    int fd = ::open(lock->c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                    0600);
    if (fd < 0)
      return "could not start: cannot create " + *lock + ": "
             + std::strerror(errno);
    held.hold(fd);
    if (auto why = lock_folder(fd, files_of[*lock]))
      return why;
  }
  return std::nullopt;
}

} // namespace mcfg
