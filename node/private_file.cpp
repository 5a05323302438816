#include "memcached_cfg/node/private_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mcfg {

result<std::string> read_private_file(const std::string& path,
                                      const std::string& what) {
  auto refuse = [&](const std::string& why) {
    return fail(what + " " + path + ": " + why);
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return refuse(std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return refuse("not a regular file");
  if ((st.st_mode & 077) != 0)
    return refuse("readable by others; make it mode 0600");
  std::ifstream in{path, std::ios::binary};
  std::ostringstream text;
  text << in.rdbuf();
  if (!in)
    return refuse("cannot read it");
  return text.str();
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
