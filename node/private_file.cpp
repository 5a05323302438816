#include "memcached_cfg/node/private_file.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mcfg {

result<std::string> read_private_file(const std::string& path,
                                      const std::string& what) {
  auto refuse = [&](const std::string& why) {
    return fail(what + " " + path + ": " + why);
  };
  // Opened first, then checked on the descriptor: what is checked is what
  // is read, however the path changes meanwhile. A symlink is refused (a
  // private file is named by its own path); O_NONBLOCK keeps a FIFO planted
  // there from blocking the open, and fstat then refuses it.
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return refuse(errno == ELOOP ? "is a symbolic link; name the file itself"
                                 : std::strerror(errno));
  struct closer {
    int fd;
    ~closer() {
      ::close(fd);
    }
  } guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return refuse(std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return refuse("not a regular file");
  if ((st.st_mode & 077) != 0)
    return refuse("readable by others; make it mode 0600");
  std::string text;
  char buf[4096];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return refuse("cannot read it: " + std::string{std::strerror(errno)});
    if (n == 0)
      return text;
    text.append(buf, static_cast<size_t>(n));
  }
}

void forbid_core_dumps() {
  // It cannot fail with these arguments (prctl(2)); the unit's LimitCORE=0
  // is the second line of defence.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

result<std::string> read_token_file(const std::string& path) {
  auto content = read_private_file(path, "token file");
  if (!content)
    return content;
  auto token = std::move(content).value();
  auto first = token.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    return fail("token file " + path + ": empty");
  auto last = token.find_last_not_of(" \t\r\n");
  token = token.substr(first, last - first + 1);
  // It travels in an HTTP header: one word of visible ASCII.
  for (unsigned char c : token)
    if (c < 0x21 || c > 0x7e)
      return fail("token file " + path
                  + ": the token must be one word of visible ASCII");
  return token;
}

} // namespace mcfg
