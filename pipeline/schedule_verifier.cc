#include "pipeline/schedule_verifier.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

namespace baton {
namespace {

bool IsSend(ActionKind k) { return k == ActionKind::kSendActivation || k == ActionKind::kSendGrad; }
bool IsRecv(ActionKind k) { return k == ActionKind::kRecvActivation || k == ActionKind::kRecvGrad; }
bool IsGradMessage(ActionKind k) { return k == ActionKind::kSendGrad || k == ActionKind::kRecvGrad; }

std::string At(int rank, int index, const Action& a) {
  return "rank " + std::to_string(rank) + " action " + std::to_string(index) + " " + ActionToString(a);
}

std::string Pair(int mb, int chunk) {
  return "(mb " + std::to_string(mb) + ", chunk " + std::to_string(chunk) + ")";
}

// Messages are keyed by (activation or gradient, micro-batch, global chunk of
// the receiving side); the pair of ranks follows from the key.
class MessageKeys {
 public:
  MessageKeys(int microbatches, int num_chunks) : microbatches_(microbatches), num_chunks_(num_chunks) {}
  int size() const { return 2 * microbatches_ * num_chunks_; }
  // The receiving global chunk of a send/recv action of global chunk g.
  static int ReceivingChunk(ActionKind k, int g) {
    switch (k) {
      case ActionKind::kSendActivation: return g + 1;
      case ActionKind::kSendGrad: return g - 1;
      default: return g;
    }
  }
  int Key(ActionKind k, int mb, int g) const {
    return ((IsGradMessage(k) ? 1 : 0) * microbatches_ + mb) * num_chunks_ + ReceivingChunk(k, g);
  }

 private:
  int microbatches_, num_chunks_;
};

Status CheckFields(const PipelineSchedule& s) {
  const int P = s.stages, M = s.microbatches, V = s.virtual_stages, G = P * V;
  if (P < 1 || M < 1 || V < 1) {
    return Status::InvalidArgument("schedule: stages, microbatches and virtual_stages must be >= 1, got " +
                                   std::to_string(P) + ", " + std::to_string(M) + ", " + std::to_string(V));
  }
  if (static_cast<int>(s.ranks.size()) != P) {
    return Status::InvalidArgument("schedule: has action lists for " + std::to_string(s.ranks.size()) +
                                   " ranks, but " + std::to_string(P) + " stages");
  }
  for (int r = 0; r < P; ++r) {
    const auto& list = s.ranks[r];
    if (list.empty() || list.back().kind != ActionKind::kOptimizerStep) {
      return Status::InvalidArgument("rank " + std::to_string(r) + ": the last action must be OptimizerStep, got " +
                                     (list.empty() ? std::string("an empty list") : ActionToString(list.back())) +
                                     (list.empty() ? "" : " (action " + std::to_string(list.size() - 1) + ")"));
    }
    for (int i = 0; i < static_cast<int>(list.size()); ++i) {
      const Action& a = list[i];
      if (a.kind == ActionKind::kOptimizerStep) {
        if (i != static_cast<int>(list.size()) - 1) {
          return Status::InvalidArgument(At(r, i, a) + ": OptimizerStep must be the last action, " +
                                         std::to_string(list.size() - 1 - i) + " action(s) follow it");
        }
        continue;
      }
      if (a.microbatch < 0 || a.microbatch >= M) {
        return Status::InvalidArgument(At(r, i, a) + ": micro-batch out of range [0, " + std::to_string(M) + ")");
      }
      if (a.chunk < 0 || a.chunk >= V) {
        return Status::InvalidArgument(At(r, i, a) + ": chunk out of range [0, " + std::to_string(V) + ")");
      }
      if (!IsCommunication(a.kind)) continue;
      const int g = a.chunk * P + r;
      int neighbour = -1;  // the global chunk on the other side
      switch (a.kind) {
        case ActionKind::kSendActivation:
        case ActionKind::kRecvGrad: neighbour = g + 1; break;
        case ActionKind::kRecvActivation:
        case ActionKind::kSendGrad: neighbour = g - 1; break;
        default: break;
      }
      if (neighbour < 0 || neighbour >= G) {
        const char* why = neighbour < 0 ? "global chunk 0 reads the data and sends no input gradient"
                                        : "the last global chunk computes the loss and has no downstream chunk";
        return Status::InvalidArgument(At(r, i, a) + ": global chunk " + std::to_string(g) + " has no such message (" +
                                       why + ")");
      }
      const int expected_peer = neighbour % P;
      if (a.peer != expected_peer) {
        return Status::InvalidArgument(At(r, i, a) + ": peer must be rank " + std::to_string(expected_peer) +
                                       " (global chunk " + std::to_string(neighbour) + "), got " +
                                       std::to_string(a.peer));
      }
    }
  }
  return Status::OK();
}

Status CheckMatching(const PipelineSchedule& s) {
  const int P = s.stages;
  MessageKeys keys(s.microbatches, P * s.virtual_stages);
  struct Where { int rank = -1, index = -1; };
  std::vector<Where> sends(keys.size()), recvs(keys.size());
  for (int r = 0; r < P; ++r) {
    for (int i = 0; i < static_cast<int>(s.ranks[r].size()); ++i) {
      const Action& a = s.ranks[r][i];
      if (!IsCommunication(a.kind)) continue;
      const int key = keys.Key(a.kind, a.microbatch, a.chunk * P + r);
      Where& w = IsSend(a.kind) ? sends[key] : recvs[key];
      if (w.rank >= 0) {
        return Status::InvalidArgument(At(r, i, a) + ": duplicate of " +
                                       At(w.rank, w.index, s.ranks[w.rank][w.index]));
      }
      w = Where{r, i};
    }
  }
  for (int r = 0; r < P; ++r) {
    for (int i = 0; i < static_cast<int>(s.ranks[r].size()); ++i) {
      const Action& a = s.ranks[r][i];
      if (!IsCommunication(a.kind)) continue;
      const int key = keys.Key(a.kind, a.microbatch, a.chunk * P + r);
      if (IsSend(a.kind) && recvs[key].rank < 0) {
        const int g = MessageKeys::ReceivingChunk(a.kind, a.chunk * P + r);
        return Status::InvalidArgument(
            At(r, i, a) + ": unmatched send: rank " + std::to_string(a.peer) + " has no " +
            (a.kind == ActionKind::kSendActivation ? "RecvActivation" : "RecvGrad") +
            Pair(a.microbatch, g / P) + " for it");
      }
      if (IsRecv(a.kind) && sends[key].rank < 0) {
        const int g = (a.kind == ActionKind::kRecvActivation ? a.chunk * P + r - 1 : a.chunk * P + r + 1);
        return Status::InvalidArgument(
            At(r, i, a) + ": unmatched receive: rank " + std::to_string(a.peer) + " has no " +
            (a.kind == ActionKind::kRecvActivation ? "SendActivation" : "SendGrad") + Pair(a.microbatch, g / P) +
            " for it");
      }
    }
  }
  return Status::OK();
}

// Per rank: F/B/W present exactly once and in order, each with its
// communication around it; activation memory.
Status CheckRank(const PipelineSchedule& s, int r, int memory_budget, int* peak) {
  const int P = s.stages, M = s.microbatches, V = s.virtual_stages, G = P * V;
  const auto& list = s.ranks[r];
  enum Slot { kF, kB, kBI, kW, kRA, kSA, kRG, kSG, kSlots };
  // index of each action kind per (mb, chunk); -1 = not (yet) seen
  std::vector<std::array<int, kSlots>> seen(static_cast<size_t>(M) * V);
  for (auto& x : seen) x.fill(-1);
  int held = 0;
  *peak = 0;
  for (int i = 0; i < static_cast<int>(list.size()); ++i) {
    const Action& a = list[i];
    if (a.kind == ActionKind::kOptimizerStep) continue;
    auto& at = seen[static_cast<size_t>(a.microbatch) * V + a.chunk];
    const int g = a.chunk * P + r;
    Slot slot = kF;
    switch (a.kind) {
      case ActionKind::kForward: slot = kF; break;
      case ActionKind::kBackward: slot = kB; break;
      case ActionKind::kBackwardInput: slot = kBI; break;
      case ActionKind::kBackwardWeight: slot = kW; break;
      case ActionKind::kRecvActivation: slot = kRA; break;
      case ActionKind::kSendActivation: slot = kSA; break;
      case ActionKind::kRecvGrad: slot = kRG; break;
      case ActionKind::kSendGrad: slot = kSG; break;
      case ActionKind::kOptimizerStep: break;
    }
    if (at[slot] >= 0) {
      return Status::InvalidArgument(At(r, i, a) + ": duplicate of action " + std::to_string(at[slot]));
    }
    const int backward = at[kB] >= 0 ? at[kB] : at[kBI];  // B or B-input, whichever ran
    const std::string pair = Pair(a.microbatch, a.chunk);
    switch (a.kind) {
      case ActionKind::kForward:
        if (backward >= 0 || at[kW] >= 0) {
          return Status::InvalidArgument(At(r, i, a) + ": comes after the backward of " + pair + " (action " +
                                         std::to_string(backward >= 0 ? backward : at[kW]) + ")");
        }
        if (g > 0 && at[kRA] < 0) {
          return Status::InvalidArgument(At(r, i, a) + ": its input has not been received: RecvActivation" + pair +
                                         " must come before it");
        }
        if (++held > *peak) *peak = held;
        if (memory_budget > 0 && held > memory_budget) {
          return Status::InvalidArgument(At(r, i, a) + ": would hold the activations of " + std::to_string(held) + " micro-batches" +
                                         (V > 1 ? " (counted per chunk)" : "") + ", over the memory budget of " +
                                         std::to_string(memory_budget));
        }
        break;
      case ActionKind::kBackward:
      case ActionKind::kBackwardInput:
        if (at[kF] < 0) {
          return Status::InvalidArgument(At(r, i, a) + ": backward before the Forward" + pair +
                                         " (which does not come before it)");
        }
        if (backward >= 0) {
          return Status::InvalidArgument(At(r, i, a) + ": " + pair + " already has a backward (action " +
                                         std::to_string(backward) + "); use one Backward, or one BackwardInput "
                                         "and one BackwardWeight");
        }
        if (g < G - 1 && at[kRG] < 0) {
          return Status::InvalidArgument(At(r, i, a) + ": its output gradient has not been received: RecvGrad" +
                                         pair + " must come before it");
        }
        if (a.kind == ActionKind::kBackward && --held < 0) held = 0;
        break;
      case ActionKind::kBackwardWeight:
        if (at[kBI] < 0) {
          return Status::InvalidArgument(
              At(r, i, a) + ": W before B: BackwardInput" + pair + " must come before it" +
              (at[kB] >= 0 ? " (action " + std::to_string(at[kB]) + " is a fused Backward, which includes W)" : ""));
        }
        --held;
        break;
      case ActionKind::kSendActivation:
        if (at[kF] < 0) {
          return Status::InvalidArgument(At(r, i, a) + ": sends an activation before its Forward" + pair);
        }
        break;
      case ActionKind::kSendGrad:
        if (backward < 0) {
          return Status::InvalidArgument(At(r, i, a) + ": sends an input gradient before the backward of " + pair);
        }
        break;
      case ActionKind::kRecvActivation:
      case ActionKind::kRecvGrad:
      case ActionKind::kOptimizerStep: break;
    }
    at[slot] = i;
  }
  // Everything present?
  for (int c = 0; c < V; ++c) {
    const int g = c * P + r;
    for (int mb = 0; mb < M; ++mb) {
      const auto& at = seen[static_cast<size_t>(mb) * V + c];
      const std::string where = "rank " + std::to_string(r) + ": ";
      const std::string pair = Pair(mb, c);
      if (at[kF] < 0) return Status::InvalidArgument(where + "Forward" + pair + " is missing");
      const std::string fwd = "Forward" + pair + " (action " + std::to_string(at[kF]) + ")";
      if (at[kB] < 0 && at[kBI] < 0) {
        return Status::InvalidArgument(where + fwd +
                                       " has no backward (Backward, or BackwardInput and BackwardWeight)");
      }
      if (at[kBI] >= 0 && at[kW] < 0) {
        return Status::InvalidArgument(where + "BackwardWeight" + pair + " is missing (BackwardInput is action " +
                                       std::to_string(at[kBI]) + ")");
      }
      if (g > 0 && at[kSG] < 0) {
        return Status::InvalidArgument(where + "SendGrad" + pair + " to rank " + std::to_string((g - 1) % P) +
                                       " is missing after the backward of " + fwd);
      }
      if (g < G - 1 && at[kSA] < 0) {
        return Status::InvalidArgument(where + "SendActivation" + pair + " to rank " + std::to_string((g + 1) % P) +
                                       " is missing after " + fwd);
      }
    }
  }
  return Status::OK();
}

}  // namespace

double ActionCost(const Action& a, const ScheduleCosts& costs) {
  switch (a.kind) {
    case ActionKind::kForward: return costs.forward;
    case ActionKind::kBackward: return costs.backward_input + costs.backward_weight;
    case ActionKind::kBackwardInput: return costs.backward_input;
    case ActionKind::kBackwardWeight: return costs.backward_weight;
    default: return 0;
  }
}

Status CheckScheduleStructure(const PipelineSchedule& s, int memory_budget) {
  if (memory_budget < 0) {
    return Status::InvalidArgument("memory budget must be >= 0 (0 = unlimited), got " +
                                   std::to_string(memory_budget));
  }
  BATON_RETURN_IF_ERROR(CheckFields(s));
  BATON_RETURN_IF_ERROR(CheckMatching(s));
  for (int r = 0; r < s.stages; ++r) {
    int peak = 0;
    BATON_RETURN_IF_ERROR(CheckRank(s, r, memory_budget, &peak));
  }
  return Status::OK();
}

Result<ScheduleReport> VerifySchedule(const PipelineSchedule& s, const ScheduleCosts& costs, int memory_budget,
                                      const std::vector<ScheduleCosts>* rank_costs) {
  if (rank_costs && static_cast<int>(rank_costs->size()) != s.stages)
    return Status::InvalidArgument("costs for " + std::to_string(rank_costs->size()) + " ranks, the schedule has " +
                                   std::to_string(s.stages));
  std::vector<ScheduleCosts> cost_of(static_cast<size_t>(std::max(s.stages, 0)), costs);
  if (rank_costs) cost_of = *rank_costs;
  for (const ScheduleCosts& k : cost_of) {
    for (double c : {k.forward, k.backward_input, k.backward_weight}) {
      if (!(c >= 0) || !std::isfinite(c)) {
        return Status::InvalidArgument("schedule costs must be finite and >= 0, got F=" + std::to_string(k.forward) +
                                       " B=" + std::to_string(k.backward_input) +
                                       " W=" + std::to_string(k.backward_weight));
      }
    }
  }
  if (memory_budget < 0) {
    return Status::InvalidArgument("memory budget must be >= 0 (0 = unlimited), got " +
                                   std::to_string(memory_budget));
  }
  BATON_RETURN_IF_ERROR(CheckFields(s));
  BATON_RETURN_IF_ERROR(CheckMatching(s));
  const int P = s.stages;
  ScheduleReport report;
  report.peak_inflight.assign(P, 0);
  report.busy.assign(P, 0.0);
  report.spans.resize(P);
  for (int r = 0; r < P; ++r) BATON_RETURN_IF_ERROR(CheckRank(s, r, memory_budget, &report.peak_inflight[r]));

  // Simulation. Each rank runs its list in order on its own clock; a send
  // records when it was posted; a receive waits for that time or blocks.
  MessageKeys keys(s.microbatches, P * s.virtual_stages);
  std::vector<double> posted(keys.size(), -1.0);
  std::vector<size_t> pc(P, 0);
  std::vector<double> clock(P, 0.0);
  for (bool progress = true; progress;) {
    progress = false;
    for (int r = 0; r < P; ++r) {
      const auto& list = s.ranks[r];
      while (pc[r] < list.size()) {
        const Action& a = list[pc[r]];
        if (IsCompute(a.kind)) {
          const double d = ActionCost(a, cost_of[r]);
          report.spans[r].push_back(ComputeSpan{static_cast<int>(pc[r]), clock[r], clock[r] + d});
          clock[r] += d;
          report.busy[r] += d;
        } else if (IsSend(a.kind)) {
          posted[keys.Key(a.kind, a.microbatch, a.chunk * P + r)] = clock[r];
        } else if (IsRecv(a.kind)) {
          const double t = posted[keys.Key(a.kind, a.microbatch, a.chunk * P + r)];
          if (t < 0) break;  // blocked until the peer posts the send
          clock[r] = std::max(clock[r], t);
        }
        ++pc[r];
        progress = true;
      }
    }
  }
  std::string stuck;
  for (int r = 0; r < P; ++r) {
    if (pc[r] == s.ranks[r].size()) continue;
    const int i = static_cast<int>(pc[r]);
    const Action& a = s.ranks[r][i];
    if (!stuck.empty()) stuck += "; ";
    stuck += At(r, i, a) + " waits for rank " + std::to_string(a.peer) + "'s " +
             (a.kind == ActionKind::kRecvActivation ? "SendActivation" : "SendGrad");
    const int peer_pc = static_cast<int>(pc[a.peer]);
    if (peer_pc < static_cast<int>(s.ranks[a.peer].size())) {
      stuck += " (rank " + std::to_string(a.peer) + " is blocked at action " + std::to_string(peer_pc) + ")";
    }
  }
  if (!stuck.empty()) return Status::InvalidArgument("deadlock, no rank can progress: " + stuck);

  for (int r = 0; r < P; ++r) report.makespan = std::max(report.makespan, clock[r]);
  double busy = 0;
  for (double b : report.busy) busy += b;
  const double total = P * report.makespan;
  report.bubble_fraction = total > 0 ? (total - busy) / total : 0.0;
  return report;
}

}  // namespace baton
