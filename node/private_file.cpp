#include "memcached_cfg/node/private_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mcfg {

std::variant<std::string, std::string>
read_private_file(const std::string& path, const std::string& what) {
  using result = std::variant<std::string, std::string>;
  auto fail = [&](const std::string& why) {
    return result{std::in_place_index<1>, what + " " + path + ": " + why};
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fail(std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return fail("not a regular file");
  if ((st.st_mode & 077) != 0)
    return fail("readable by others; make it mode 0600");
  std::ifstream in{path, std::ios::binary};
  std::ostringstream text;
  text << in.rdbuf();
  if (!in)
    return fail("cannot read it");
  return result{std::in_place_index<0>, text.str()};
}

std::variant<std::string, std::string>
read_token_file(const std::string& path) {
  using result = std::variant<std::string, std::string>;
  auto content = read_private_file(path, "token file");
  if (content.index() == 1)
    return content;
  auto token = std::get<0>(std::move(content));
  auto first = token.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    return result{std::in_place_index<1>, "token file " + path + ": empty"};
  auto last = token.find_last_not_of(" \t\r\n");
  token = token.substr(first, last - first + 1);
  // It travels in an HTTP header: one word of visible ASCII.
  for (unsigned char c : token)
    if (c < 0x21 || c > 0x7e)
      return result{std::in_place_index<1>,
                    "token file " + path
                      + ": the token must be one word of visible ASCII"};
  return result{std::in_place_index<0>, std::move(token)};
}

} // namespace mcfg
