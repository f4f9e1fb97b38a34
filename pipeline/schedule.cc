#include "pipeline/schedule.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace baton {
namespace {

// Appends one rank's actions, each compute action with the communication it
// needs: the receive of its input right before it, the send of its output
// right after it. Consecutive actions of neighbouring compute actions thus
// come out adjacent with the send first (e.g. 1F1B's steady state:
// SendActivation(i), RecvGrad(j)), which the executor posts together.
class RankBuilder {
 public:
  RankBuilder(int stages, int virtual_stages, int rank, std::vector<Action>* out)
      : stages_(stages), num_chunks_(stages * virtual_stages), rank_(rank), out_(out) {}

  void Forward(int mb, int chunk) {
    const int g = chunk * stages_ + rank_;
    if (g > 0) Push(ActionKind::kRecvActivation, mb, chunk, (g - 1) % stages_);
    Push(ActionKind::kForward, mb, chunk);
    if (g < num_chunks_ - 1) Push(ActionKind::kSendActivation, mb, chunk, (g + 1) % stages_);
  }
  // `kind` is kBackward (fused) or kBackwardInput (zero-bubble B).
  void Backward(int mb, int chunk, ActionKind kind) {
    const int g = chunk * stages_ + rank_;
    if (g < num_chunks_ - 1) Push(ActionKind::kRecvGrad, mb, chunk, (g + 1) % stages_);
    Push(kind, mb, chunk);
    if (g > 0) Push(ActionKind::kSendGrad, mb, chunk, (g - 1) % stages_);
  }
  // One forward and one backward with their messages around both: the two
  // receives first, the two sends last, so the executor posts them as one
  // group (Megatron's send_forward_backward_recv_forward_backward). On a
  // transport that matches in order on one stream per rank (NCCL), two
  // neighbours then never wait on each other's lone sends.
  void ForwardBackward(int fmb, int fchunk, int bmb, int bchunk) {
    const int f = fchunk * stages_ + rank_, b = bchunk * stages_ + rank_;
    if (f > 0) Push(ActionKind::kRecvActivation, fmb, fchunk, (f - 1) % stages_);
    if (b < num_chunks_ - 1) Push(ActionKind::kRecvGrad, bmb, bchunk, (b + 1) % stages_);
    Push(ActionKind::kForward, fmb, fchunk);
    Push(ActionKind::kBackward, bmb, bchunk);
    if (f < num_chunks_ - 1) Push(ActionKind::kSendActivation, fmb, fchunk, (f + 1) % stages_);
    if (b > 0) Push(ActionKind::kSendGrad, bmb, bchunk, (b - 1) % stages_);
  }
  void Weight(int mb, int chunk) { Push(ActionKind::kBackwardWeight, mb, chunk); }
  void OptimizerStep() { out_->push_back(Action{ActionKind::kOptimizerStep, -1, 0, -1}); }

 private:
  void Push(ActionKind kind, int mb, int chunk, int peer = -1) { out_->push_back(Action{kind, mb, chunk, peer}); }
  int stages_, num_chunks_, rank_;
  std::vector<Action>* out_;
};

void BuildGPipe(PipelineSchedule* s) {
  for (int r = 0; r < s->stages; ++r) {
    RankBuilder b(s->stages, 1, r, &s->ranks[r]);
    for (int mb = 0; mb < s->microbatches; ++mb) b.Forward(mb, 0);
    for (int mb = 0; mb < s->microbatches; ++mb) b.Backward(mb, 0, ActionKind::kBackward);
    b.OptimizerStep();
  }
}

void Build1F1B(PipelineSchedule* s) {
  const int P = s->stages, M = s->microbatches;
  for (int r = 0; r < P; ++r) {
    RankBuilder b(P, 1, r, &s->ranks[r]);
    const int warmup = std::min(P - 1 - r, M);
    int f = 0, bw = 0;
    for (; f < warmup; ++f) b.Forward(f, 0);
    for (; f < M; ++f, ++bw) {  // steady state: one forward, one backward
      b.Forward(f, 0);
      b.Backward(bw, 0, ActionKind::kBackward);
    }
    for (; bw < M; ++bw) b.Backward(bw, 0, ActionKind::kBackward);  // cool-down
    b.OptimizerStep();
  }
}

// Megatron-LM's interleaved schedule (forward_backward_pipelining_with_interleaving):
// virtual micro-batch k runs micro-batch (k / (P V)) P + k % P on chunk
// (k % (P V)) / P for forwards, on the mirrored chunk V-1-that for backwards.
void BuildInterleaved(PipelineSchedule* s) {
  const int P = s->stages, M = s->microbatches, V = s->virtual_stages;
  const int total = M * V;
  auto unit = [&](int k, bool forward, int* mb, int* chunk) {
    const int group = k / (P * V), in_group = k % (P * V);
    *mb = group * P + in_group % P;
    *chunk = forward ? in_group / P : V - 1 - in_group / P;
  };
  for (int r = 0; r < P; ++r) {
    RankBuilder b(P, V, r, &s->ranks[r]);
    const int warmup = std::min((P - 1 - r) * 2 + (V - 1) * P, total);
    int mb, chunk;
    for (int k = 0; k < warmup; ++k) {
      unit(k, true, &mb, &chunk);
      b.Forward(mb, chunk);
    }
    for (int k = 0; k < total - warmup; ++k) {
      int bmb, bchunk;
      unit(k + warmup, true, &mb, &chunk);
      unit(k, false, &bmb, &bchunk);
      b.ForwardBackward(mb, chunk, bmb, bchunk);
    }
    for (int k = std::max(total - warmup, 0); k < total; ++k) {
      unit(k, false, &mb, &chunk);
      b.Backward(mb, chunk, ActionKind::kBackward);
    }
    b.OptimizerStep();
  }
}

// ZB-H1 (Qi et al. 2023, "Zero Bubble Pipeline Parallelism", figure 3): the
// order of F and B is 1F1B's; rank r lets its first r W passes wait (so the
// input gradient of the next micro-batch reaches rank r-1 sooner) and runs
// them at the very end, where rank r would otherwise idle in the cool-down.
// Warm-up P-1-r forwards plus r deferred W passes: at most P micro-batches
// held on every rank, 1F1B's peak.
void BuildZeroBubbleH1(PipelineSchedule* s) {
  const int P = s->stages, M = s->microbatches;
  for (int r = 0; r < P; ++r) {
    RankBuilder b(P, 1, r, &s->ranks[r]);
    const int warmup = std::min(P - 1 - r, M);
    const int deferred = std::min(r, M - warmup);
    int f = 0, bi = 0, w = 0;
    for (; f < warmup; ++f) b.Forward(f, 0);
    for (int i = 0; i < deferred; ++i, ++f, ++bi) {  // F B, W deferred
      b.Forward(f, 0);
      b.Backward(bi, 0, ActionKind::kBackwardInput);
    }
    for (; f < M; ++f, ++bi, ++w) {  // steady state: F B W
      b.Forward(f, 0);
      b.Backward(bi, 0, ActionKind::kBackwardInput);
      b.Weight(w, 0);
    }
    for (; bi < M; ++bi, ++w) {  // cool-down: B W
      b.Backward(bi, 0, ActionKind::kBackwardInput);
      b.Weight(w, 0);
    }
    for (; w < M; ++w) b.Weight(w, 0);  // the deferred W passes fill the tail
    b.OptimizerStep();
  }
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

bool operator==(const Action& a, const Action& b) {
  return a.kind == b.kind && a.microbatch == b.microbatch && a.chunk == b.chunk && a.peer == b.peer;
}

Result<PipelineSchedule> BuildSchedule(ScheduleKind kind, int stages, int microbatches, int virtual_stages) {
  const std::string what = std::string(ScheduleKindTitle(kind)) + " schedule: ";
  if (stages < 1) return Status::InvalidArgument(what + "stages must be >= 1, got " + std::to_string(stages));
  if (microbatches < 1) {
    return Status::InvalidArgument(what + "microbatches must be >= 1, got " + std::to_string(microbatches));
  }
  if (virtual_stages < 1) {
    return Status::InvalidArgument(what + "virtual stages must be >= 1, got " + std::to_string(virtual_stages));
  }
  if (virtual_stages > 1 && kind != ScheduleKind::kInterleaved1F1B) {
    return Status::InvalidArgument(what + "virtual stages (" + std::to_string(virtual_stages) +
                                   ") need the interleaved schedule; use virtual stages = 1 or kind interleaved");
  }
  if (kind == ScheduleKind::kInterleaved1F1B && virtual_stages > 1 && microbatches % stages != 0) {
    return Status::InvalidArgument(what + "microbatches (" + std::to_string(microbatches) +
                                   ") must be a multiple of stages (" + std::to_string(stages) +
                                   ") when virtual stages > 1; e.g. " +
                                   std::to_string((microbatches / stages + 1) * stages) + " micro-batches");
  }
  PipelineSchedule s{kind, stages, microbatches, virtual_stages, {}};
  s.ranks.resize(stages);
  switch (kind) {
    case ScheduleKind::kGPipe: BuildGPipe(&s); break;
    case ScheduleKind::k1F1B: Build1F1B(&s); break;
    case ScheduleKind::kInterleaved1F1B:
      if (virtual_stages == 1) {
        Build1F1B(&s);
      } else {
        BuildInterleaved(&s);
      }
      break;
    case ScheduleKind::kZeroBubbleH1: BuildZeroBubbleH1(&s); break;
  }
  return s;
}

Result<ScheduleKind> ParseScheduleKind(const std::string& name) {
  const std::string n = Lower(name);
  if (n == "gpipe") return ScheduleKind::kGPipe;
  if (n == "1f1b" || n == "one_f_one_b") return ScheduleKind::k1F1B;
  if (n == "interleaved" || n == "interleaved-1f1b" || n == "interleaved_1f1b") return ScheduleKind::kInterleaved1F1B;
  if (n == "zb-h1" || n == "zbh1" || n == "zb_h1" || n == "zero_bubble_h1") return ScheduleKind::kZeroBubbleH1;
  return Status::InvalidArgument("unknown pipeline schedule '" + name +
                                 "'; expected one of gpipe, 1f1b, interleaved, zb-h1 "
                                 "(or GPIPE, ONE_F_ONE_B, INTERLEAVED_1F1B, ZERO_BUBBLE_H1)");
}

const char* ScheduleKindName(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kGPipe: return "gpipe";
    case ScheduleKind::k1F1B: return "1f1b";
    case ScheduleKind::kInterleaved1F1B: return "interleaved";
    case ScheduleKind::kZeroBubbleH1: return "zb-h1";
  }
  return "?";
}

const char* ScheduleKindTitle(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kGPipe: return "GPipe";
    case ScheduleKind::k1F1B: return "1F1B";
    case ScheduleKind::kInterleaved1F1B: return "interleaved 1F1B";
    case ScheduleKind::kZeroBubbleH1: return "ZB-H1";
  }
  return "?";
}

const char* ActionKindName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kForward: return "Forward";
    case ActionKind::kBackward: return "Backward";
    case ActionKind::kBackwardInput: return "BackwardInput";
    case ActionKind::kBackwardWeight: return "BackwardWeight";
    case ActionKind::kSendActivation: return "SendActivation";
    case ActionKind::kRecvActivation: return "RecvActivation";
    case ActionKind::kSendGrad: return "SendGrad";
    case ActionKind::kRecvGrad: return "RecvGrad";
    case ActionKind::kOptimizerStep: return "OptimizerStep";
  }
  return "?";
}

bool IsCompute(ActionKind kind) {
  return kind == ActionKind::kForward || kind == ActionKind::kBackward || kind == ActionKind::kBackwardInput ||
         kind == ActionKind::kBackwardWeight;
}

bool IsCommunication(ActionKind kind) {
  return kind == ActionKind::kSendActivation || kind == ActionKind::kRecvActivation ||
         kind == ActionKind::kSendGrad || kind == ActionKind::kRecvGrad;
}

std::string ActionToString(const Action& a) {
  if (a.kind == ActionKind::kOptimizerStep) return "OptimizerStep";
  std::ostringstream os;
  os << ActionKindName(a.kind) << "(mb " << a.microbatch << ", chunk " << a.chunk;
  if (a.kind == ActionKind::kSendActivation || a.kind == ActionKind::kSendGrad) os << ", to rank " << a.peer;
  if (a.kind == ActionKind::kRecvActivation || a.kind == ActionKind::kRecvGrad) os << ", from rank " << a.peer;
  os << ")";
  return os.str();
}

std::string ScheduleToString(const PipelineSchedule& s) {
  std::ostringstream os;
  os << ScheduleKindTitle(s.kind) << ": " << s.stages << " stages, " << s.microbatches << " micro-batches, "
     << s.virtual_stages << " virtual stage(s) per rank\n";
  for (size_t r = 0; r < s.ranks.size(); ++r) {
    os << "rank " << r << ":\n";
    for (size_t i = 0; i < s.ranks[r].size(); ++i) os << "  " << i << ": " << ActionToString(s.ranks[r][i]) << "\n";
  }
  return os.str();
}

}  // namespace baton
