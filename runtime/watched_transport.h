// A Transport whose blocking calls are watched by the CommWatchdog: the MPI
// twins of the NCCL groups (host scalars of the step: losses, norms), so that
// a peer that hangs while this rank waits in MPI ends the job within the
// timeout, as it does while this rank waits for NCCL.
#pragma once

#include <memory>

#include "runtime/transport.h"

namespace baton {

std::unique_ptr<Transport> NewWatchedTransport(std::unique_ptr<Transport> inner);

}  // namespace baton
