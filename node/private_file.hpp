#pragma once
// Files only their owner may read: the control API's bearer token, the etcd
// password, a TLS key. Shared by the node (etcd's password) and the
// programs (the token, mcfgd's TLS key); part of no API.
#include <string>

#include "memcached_cfg/messages/result.hpp"

namespace mcfg {

/// The content of a file only its owner may read (a regular file, no group
/// or other bits), such as a token or a TLS key; `what` names it in errors
/// ("token file"). The error names the path, never the content. A symlink
/// at `path` is refused, and the checks are made on the opened descriptor
/// (fstat), so the file checked is the file read.
result<std::string> read_private_file(const std::string& path,
                                      const std::string& what);

/// Makes this process not dumpable (prctl PR_SET_DUMPABLE 0): no core
/// file, and no ptrace or /proc/PID/mem read by another process of the same
/// user, can then show the passwords and tokens it holds. Called first in
/// every main, before any secret is read.
void forbid_core_dumps();

/// The bearer token in `path` (a private file): its content without
/// surrounding whitespace, one word of visible ASCII.
result<std::string> read_token_file(const std::string& path);

} // namespace mcfg
