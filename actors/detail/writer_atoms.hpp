#pragma once
// The messages a memcached_cfg writer sends itself. Not part of its client
// interface (memcached_cfg_actor); tests include this to watch its timers.
#include <caf/atom.hpp>

namespace mcfg::detail {

/// write: perform the owed write attempt.
using write_atom = caf::atom_constant<caf::atom("write")>;
/// retry(timer_id): the armed retry timer fired.
using retry_atom = caf::atom_constant<caf::atom("retry")>;
/// io_done(attempt_id, operation, path, errno): an attempt handed to the
/// pool ended; `operation` is empty when every step succeeded.
using io_done_atom = caf::atom_constant<caf::atom("io_done")>;
/// deadline(attempt_id): the deadline of the attempt in flight is due.
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;

} // namespace mcfg::detail
