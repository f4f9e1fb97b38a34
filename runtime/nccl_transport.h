// NCCL Transport (GPU builds): the same interface as the MPI transport, for
// tensors on this rank's GPU.
//
// Streams. Each transport (the world and every Split group) has its own
// communication stream. An operation first makes that stream wait for
// everything enqueued on the compute stream so far (an event), so it sends
// what the compute stream produced and receives into memory the compute stream
// has finished with; it then runs on the communication stream and records a
// "done" event. Nothing blocks the host:
//   - Post returns at once; Test polls the done event; Wait makes the compute
//     stream wait for it (later kernels see received data) and releases the
//     buffers to the caching allocator, whose later users run on the compute
//     stream after that wait;
//   - the collectives are Post + Wait: they return once enqueued, ordered
//     before the compute stream's next work.
// So sending micro-batch i overlaps computing i+1, and the pipeline and
// data-parallel groups overlap each other.
//
// Matching. NCCL has no tags: messages between two ranks in one direction
// match in posting order (matches_by_tag() is false). Every Post is one NCCL
// group, so sends and receives between neighbours in one batch never deadlock;
// across batches the schedule must pass CheckStreamOrderedExchange.
//
// Sums are deterministic and equal to the MPI transport's, bit for bit: an
// all-to-all of blocks (grouped send/recv), then every element summed once,
// on its owning rank, in rank order ((x0 + x1) + x2) + ..., then (for
// AllReduceSum) the sums are gathered.
//
// Host tensors and scalar vectors go through an MPI transport of the same
// group, so callers need not care where a small tensor lives.
//
// Failures: NCCL calls return a Status naming the rank, operation and group;
// operations (and NCCL calls that may block the host: init, split, connecting
// a pair) are watched by the CommWatchdog (runtime/comm_watchdog.h), which
// aborts the job when one does not complete within the timeout.
#pragma once

#include <memory>

#include "runtime/status.h"
#include "runtime/transport.h"

namespace baton {

// Collective over MPI_COMM_WORLD: rank 0 creates the NCCL unique id, MPI
// broadcasts it, every rank joins the world communicator on its current GPU
// (select it first). Sub-groups come from Split (ncclCommSplit), at startup.
Result<std::unique_ptr<Transport>> NewNcclWorldTransport();

}  // namespace baton
