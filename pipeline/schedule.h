// Pipeline schedules as data (DESIGN.md, "Schedules are data").
//
// A schedule is, for every pipeline rank, the ordered list of actions that
// rank performs in one training step. Generators below build GPipe, 1F1B,
// interleaved 1F1B and ZB-H1 lists; pipeline/schedule_verifier.h simulates
// all ranks' lists together before a run starts; the executor only runs
// lists.
//
// Model chunks. With V virtual stages per rank the model is cut into
// stages * V chunks; rank r holds local chunks 0..V-1 whose global chunks
// are chunk * stages + r (Megatron's layout). With V = 1 the global chunk is
// the rank.
//
// Communication semantics (what the executor implements and the verifier
// simulates):
//   - a send is asynchronous: it is posted, its data copied out, and the rank
//     continues; it completes whenever the peer's matching receive runs;
//   - a receive blocks the rank until the matching send has been posted;
//   - a message is identified by (activation or gradient, microbatch, global
//     chunk of the receiving side) and the pair of ranks; activations flow
//     from global chunk g to g+1, gradients from g+1 back to g;
//   - for send/recv actions, `chunk` is the local chunk on the rank that holds
//     the action: the chunk whose output (SendActivation) or input gradient
//     (SendGrad) is sent, or the chunk that consumes the received activation
//     (RecvActivation) or output gradient (RecvGrad);
//   - consecutive communication actions may be posted together by the
//     executor; the generators always list the sends of such a group first,
//     and the verifier checks the lists one action at a time, so a schedule it
//     accepts works whether or not the executor groups them;
//   - with stages == 1 and V > 1 a message goes from rank 0 to itself
//     (peer == own rank): the executor hands the data over locally.
#pragma once

#include <string>
#include <vector>

#include "runtime/status.h"

namespace baton {

enum class ScheduleKind { kGPipe, k1F1B, kInterleaved1F1B, kZeroBubbleH1 };

enum class ActionKind {
  kForward,         // F: forward of (microbatch, chunk)
  kBackward,        // B+W fused: whole backward of (microbatch, chunk)
  kBackwardInput,   // B: input-gradient half (zero-bubble)
  kBackwardWeight,  // W: weight-gradient half (zero-bubble)
  kSendActivation,
  kRecvActivation,
  kSendGrad,
  kRecvGrad,
  kOptimizerStep,  // last action of every rank
};

struct Action {
  ActionKind kind;
  int microbatch = -1;
  int chunk = 0;  // model chunk on this rank (0..virtual_stages-1); global chunk = chunk * stages + rank
  int peer = -1;  // send/recv: the other pipeline rank
};

bool operator==(const Action& a, const Action& b);
inline bool operator!=(const Action& a, const Action& b) { return !(a == b); }

struct PipelineSchedule {
  ScheduleKind kind;
  int stages;
  int microbatches;
  int virtual_stages;
  std::vector<std::vector<Action>> ranks;  // ranks[r] = what pipeline rank r does, in order
};

// Builds the action lists of every rank. Errors (InvalidArgument): stages,
// microbatches or virtual_stages < 1; virtual_stages > 1 for a schedule
// other than interleaved; interleaved with V > 1 and microbatches not a
// multiple of stages. Interleaved with V == 1 is 1F1B (kind stays
// kInterleaved1F1B).
//
// Every generator runs each chunk's backward passes (and W passes) in
// micro-batch order, so gradients accumulate in the same order for any
// layout. GPipe: all forwards, then all backwards, both in micro-batch
// order. 1F1B: rank r warms up with stages-1-r forwards, then alternates
// one forward and one backward, then cools down (Narayanan et al. 2021).
// Interleaved: Megatron's interleaved 1F1B (forwards in groups of `stages`
// micro-batches, chunk by chunk; warm-up 2(stages-1-r) + (V-1)stages).
// ZB-H1 (Qi et al. 2023): 1F1B's order of F and B with the backward split in
// B and W; rank r defers its first r W passes to the end of the step, where
// they fill the cool-down bubble; every rank keeps at most `stages`
// micro-batches of activations, 1F1B's peak (on its first rank).
Result<PipelineSchedule> BuildSchedule(ScheduleKind kind, int stages, int microbatches, int virtual_stages = 1);

// "gpipe", "1f1b", "interleaved", "zb-h1" (any case; also "interleaved-1f1b",
// "zbh1"), and the config enum names GPIPE, ONE_F_ONE_B, INTERLEAVED_1F1B,
// ZERO_BUBBLE_H1. The error lists the accepted names.
Result<ScheduleKind> ParseScheduleKind(const std::string& name);

// The command-line name, which ParseScheduleKind accepts: "gpipe", "1f1b",
// "interleaved", "zb-h1".
const char* ScheduleKindName(ScheduleKind kind);
// For people: "GPipe", "1F1B", "interleaved 1F1B", "ZB-H1".
const char* ScheduleKindTitle(ScheduleKind kind);

const char* ActionKindName(ActionKind kind);  // "Forward", "SendActivation", ...
bool IsCompute(ActionKind kind);              // F, B, B-input, B-weight
bool IsCommunication(ActionKind kind);        // the four send/recv kinds

// Global chunk of local `chunk` on `rank`; the rank holding a global chunk.
inline int GlobalChunk(const PipelineSchedule& s, int rank, int chunk) { return chunk * s.stages + rank; }
inline int RankOfGlobalChunk(const PipelineSchedule& s, int global_chunk) { return global_chunk % s.stages; }
inline int NumGlobalChunks(const PipelineSchedule& s) { return s.stages * s.virtual_stages; }

// "Forward(mb 3, chunk 1)", "SendActivation(mb 3, chunk 1, to rank 2)", "OptimizerStep".
std::string ActionToString(const Action& a);
// Every rank's list, one action per line, for debugging and error reports.
std::string ScheduleToString(const PipelineSchedule& s);

}  // namespace baton
