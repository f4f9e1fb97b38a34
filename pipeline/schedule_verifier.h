// Checks a pipeline schedule before a run starts: simulates every rank's
// action list together with the executor's communication semantics
// (pipeline/schedule.h) and reports how well the pipeline is used.
#pragma once

#include <vector>

#include "pipeline/schedule.h"
#include "runtime/status.h"

namespace baton {

// Time each compute action takes, in any unit; a fused kBackward costs
// backward_input + backward_weight. Communication takes no time. The
// defaults (F = 1, fused B = 2) are the textbook's.
struct ScheduleCosts {
  double forward = 1, backward_input = 1, backward_weight = 1;
};

// When one compute action of a rank ran in the simulation.
struct ComputeSpan {
  int action;  // index into ranks[r]
  double start, end;
};

struct ScheduleReport {
  double bubble_fraction = 0;     // 1 - (sum of busy time over ranks) / (ranks * makespan)
  double makespan = 0;            // when the last rank finishes
  std::vector<int> peak_inflight; // per rank: max (micro-batch, chunk) pairs whose activations are held:
                                  // +1 at F, -1 when its backward finishes (fused B, or W)
  std::vector<double> busy;       // per rank: sum of its compute time
  std::vector<std::vector<ComputeSpan>> spans;  // per rank: every compute action, in list order
};

// The structural checks alone (no simulation): sizes and fields in range;
// every (microbatch, chunk) of every rank has exactly one F and either one
// fused backward or one B and one W; backward after forward, W after B; the
// receive of a compute action's input before it and the send of its output
// after it, with the right peer, exactly where the chunk has a neighbour;
// every send has exactly one matching receive and vice versa; OptimizerStep
// exactly once, last. memory_budget (micro-batch x chunk pairs held per rank,
// 0 = unlimited) is checked here too. Errors are InvalidArgument and name the
// rank, the action index and the action.
Status CheckScheduleStructure(const PipelineSchedule& s, int memory_budget = 0);

// CheckScheduleStructure, then simulates all ranks together (a send is
// posted and the rank continues; a receive blocks until its send is posted;
// actions take `costs`, communication none). A deadlock (no rank can
// progress) is an InvalidArgument that names, for every blocked rank, the
// action it is stuck at and what it waits for.
// `rank_costs` (one per rank), when given, replaces `costs`: measured action
// times of each rank (the pipeline benchmark's bubble with free communication).
Result<ScheduleReport> VerifySchedule(const PipelineSchedule& s, const ScheduleCosts& costs = {},
                                      int memory_budget = 0, const std::vector<ScheduleCosts>* rank_costs = nullptr);

// VerifySchedule assumes MPI: sends are buffered and messages carry tags, so
// the order in which two ranks exchange messages does not matter. NCCL has
// neither: this checks a schedule for a transport without tags and with one
// ordered communication stream per rank. CheckScheduleStructure, then:
//   - messages between two ranks in one direction match in posting order: the
//     k-th send of rank r to rank q must be the same message as the k-th
//     receive of q from r;
//   - every run of consecutive send/recv actions of a rank (what the executor
//     posts together; messages to the rank itself excluded) is one group;
//     a rank's groups run one after another in list order, a send or receive
//     completes only when the peer's matching one is in the peer's current
//     group (rendezvous), a group when all of its sends and receives have.
//     Compute does not matter: a rank's compute waits only for its own
//     earlier groups, and the host blocks only on its own stream (the last
//     stage reading a loss back), which the group order already implies.
// Errors are InvalidArgument: the first order mismatch (both ranks, the
// position, both actions), or a deadlock naming every stuck rank's current
// group and what each of its pending sends and receives waits for.
// Implemented in pipeline/stream_order_check.cc.
Status CheckStreamOrderedExchange(const PipelineSchedule& s);

// Compute time of one action under `costs` (0 for communication and the optimizer step).
double ActionCost(const Action& a, const ScheduleCosts& costs);

}  // namespace baton
