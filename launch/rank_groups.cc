#include "launch/rank_groups.h"

#include <set>

#include "runtime/mpi_transport.h"
#include "runtime/mpi_world.h"
#if BATON_CUDA
#include "runtime/comm_watchdog.h"
#include "runtime/nccl_transport.h"
#include "runtime/watched_transport.h"
#endif

namespace baton {
namespace {

// One small message to and from each of `peers`, in one batch, and one broadcast: NCCL
// connects at the first message between a pair and at a communicator's first collective,
// so this makes the connections now, where a failure is a startup error (watched by the
// timeout), and keeps the first training step's timing clean.
Status Connect(Transport* group, const std::set<int>& peers, Device device, const char* what) {
  std::vector<P2POp> ops;
  std::vector<Tensor> in;
  const Tensor mine = Tensor::Zeros({1}, DType::kF32, device);
  for (int peer : peers) {
    if (peer == group->rank()) continue;
    in.push_back(Tensor::Empty({1}, DType::kF32, device));
    ops.push_back(P2POp::Send(peer, 0, mine));
    ops.push_back(P2POp::Recv(peer, 0, in.back()));
  }
  if (!ops.empty()) BATON_RETURN_IF_ERROR(group->Exchange(ops).WithContext(std::string("connecting the ") + what + " group"));
  // And the collective connections (the replicas' broadcasts of updated weights).
  Tensor tiny = Tensor::Zeros({1}, DType::kF32, device);
  if (group->size() > 1) BATON_RETURN_IF_ERROR(group->Broadcast(&tiny, 0).WithContext(std::string("connecting the ") + what + " group"));
  return Status::OK();
}

}  // namespace

Result<RankGroups> ConnectRanks(Device device, int stages, double comm_timeout_seconds) {
  RankGroups g;
  g.world = NewMpiWorldTransport();
  const int stage = g.world->rank() % stages, replica = g.world->rank() / stages;
  Transport* parent = g.world.get();
#if BATON_CUDA
  if (!device.is_cpu()) {
    CommWatchdog::Instance().set_timeout_seconds(comm_timeout_seconds);
    g.world = NewWatchedTransport(std::move(g.world));
    BATON_ASSIGN_OR_RETURN(g.tensor_world, NewNcclWorldTransport());
    parent = g.tensor_world.get();
  }
#endif
  BATON_ASSIGN_OR_RETURN(g.pipe, parent->Split(replica, stage));
  BATON_ASSIGN_OR_RETURN(g.replicas, parent->Split(stage, replica));
  if (device.is_cpu()) return g;  // MPI needs no warm-up
  // Pipeline: the neighbours, and the first and last stage (the tied embedding).
  std::set<int> neighbours;
  for (int peer : {stage - 1, stage + 1}) neighbours.insert((peer + stages) % stages);
  if (stage == 0 || stage == stages - 1) neighbours.insert(stage == 0 ? stages - 1 : 0);
  BATON_RETURN_IF_ERROR(Connect(g.pipe.get(), neighbours, device, "pipeline"));
  // Data parallel: every replica sends gradients to every owner.
  std::set<int> everyone;
  for (int r = 0; r < g.replicas->size(); ++r) everyone.insert(r);
  BATON_RETURN_IF_ERROR(Connect(g.replicas.get(), everyone, device, "data-parallel"));
  SynchronizeDevice(device);
  return g;
}

#if BATON_CUDA
CommTimeoutPause::CommTimeoutPause() { CommWatchdog::Instance().Pause(); }
CommTimeoutPause::~CommTimeoutPause() { CommWatchdog::Instance().Resume(); }
#else
CommTimeoutPause::CommTimeoutPause() = default;
CommTimeoutPause::~CommTimeoutPause() = default;
#endif

}  // namespace baton
