// The process groups of a run, created once at startup:
//   world     all ranks over MPI: control traffic (checkpoint agreement, stop
//             requests, small host values);
//   pipe      this replica's pipeline stages, in stage order;
//   replicas  the data-parallel replicas of this stage, in replica order.
// On GPUs pipe and replicas are NCCL communicators split from one NCCL world
// (its unique id travels over MPI), each with its own communication stream,
// and every connection the step uses is made here by a small exchange, not
// lazily in the first step; on CPUs they are MPI sub-communicators.
// On GPU runs every group's blocking calls are watched (parallel.comm_timeout_seconds).
// World rank = replica x stages + stage: the stages of a replica are
// neighbours, so a pipeline stays inside a node when stages divide the GPUs
// per node, and only data-parallel traffic crosses nodes.
#pragma once

#include <memory>

#include "runtime/device.h"
#include "runtime/status.h"
#include "runtime/transport.h"

namespace baton {

struct RankGroups {
  std::unique_ptr<Transport> world;
  std::unique_ptr<Transport> tensor_world;  // NCCL world on GPUs (parent of pipe and replicas), else null
  std::unique_ptr<Transport> pipe, replicas;
};

// Collective over MPI_COMM_WORLD. `comm_timeout_seconds` bounds every NCCL
// operation from here on (0 = none).
Result<RankGroups> ConnectRanks(Device device, int stages, double comm_timeout_seconds);

// While one lives, communication does not time out (checkpoint writes: the
// others wait in the world group for the slowest writer). No-op on CPU runs.
class CommTimeoutPause {
 public:
  CommTimeoutPause();
  ~CommTimeoutPause();
  CommTimeoutPause(const CommTimeoutPause&) = delete;
  CommTimeoutPause& operator=(const CommTimeoutPause&) = delete;
};

}  // namespace baton
