#pragma once
// Files only their owner may read: the control API's bearer token, the etcd
// password, a TLS key. Shared by the node (etcd's password) and the
// programs (the token, mcfgd's TLS key); part of no API.
#include <string>

#include "memcached_cfg/messages/result.hpp"

namespace mcfg {

/// The content of a file only its owner may read (a regular file, no group
/// or other bits), such as a token or a TLS key; `what` names it in errors
/// ("token file"). The error names the path, never the content.
result<std::string> read_private_file(const std::string& path,
                                      const std::string& what);

/// The bearer token in `path` (a private file): its content without
/// surrounding whitespace, one word of visible ASCII.
result<std::string> read_token_file(const std::string& path);

} // namespace mcfg
