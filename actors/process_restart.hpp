#pragma once
// restart_this_process: starts the running program again in place, with the arguments it was
// started with — how a node process rejoins its cluster after the coordinator's `restart` (a new
// epoch). exec() keeps the pid (the head that started the node still owns it) and ends every
// thread at once (a rank blocked in a collective or a transfer included); every descriptor but
// stdin, stdout and stderr is closed on the way (sockets, UCX endpoints), so peers see this
// incarnation's connections close. Shared memory is unlinked when it is attached, so none is left.
// Never returns: when exec() fails it logs why and ends the process with status 1.
#include <string>

namespace troupe {

[[noreturn]] void restart_this_process(const std::string& who);

}  // namespace troupe
