// The MPI implementation of Transport (CPU build): host tensors only.
//
// Each transport owns a private communicator (a dup of MPI_COMM_WORLD, or a
// split of its parent) with MPI_ERRORS_RETURN, so its messages never mix with
// other MPI traffic and every MPI call's failure comes back as a Status.
// Point-to-point: MPI_Irecv/MPI_Isend straight from the tensors' memory, then
// MPI_Waitall; received sizes are checked against the tensor. Tensors of more
// than INT_MAX elements are rejected for now.
#pragma once

#include <memory>

#include "runtime/transport.h"

namespace baton {

struct MpiTransportOptions {
  // 0: tags up to MPI_TAG_UB. Otherwise tags are capped at min(max_tag,
  // MPI_TAG_UB): set it to 32767 (the least MPI_TAG_UB the MPI standard
  // allows) to prove that a tag encoding works on every MPI. Sub-groups
  // made by Split inherit the cap.
  int max_tag = 0;
};

// The world group over MPI. MpiWorld::Init must have run. Collective over
// MPI_COMM_WORLD (it duplicates it); aborts through BATON_CHECK only if MPI
// itself cannot create the communicator at startup.
std::unique_ptr<Transport> NewMpiWorldTransport(const MpiTransportOptions& options = MpiTransportOptions());

}  // namespace baton
