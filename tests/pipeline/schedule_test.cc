// Pipeline schedules as data: generators, verifier, timeline.
#include "pipeline/schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "pipeline/schedule_timeline.h"
#include "pipeline/schedule_verifier.h"
#include "tests/pipeline/schedule_fixtures.h"

namespace baton {
namespace {

using namespace testing;  // NOLINT: the fixtures are this test's vocabulary

// Whether `want` is among the communication actions next to action i (step -1: before it,
// +1: after it), looking past at most one other compute action: interleaved 1F1B lists a
// forward and a backward between their messages, RecvA RecvG F B SendA SendG, so that
// the four go out as two groups.
bool Near(const std::vector<Action>& list, size_t i, int step, const Action& want) {
  int computes = 0;
  for (long j = static_cast<long>(i) + step; j >= 0 && j < static_cast<long>(list.size()); j += step) {
    const Action& a = list[static_cast<size_t>(j)];
    if (a == want) return true;
    if (IsCompute(a.kind) && ++computes > 1) return false;
    if (a.kind == ActionKind::kOptimizerStep) return false;
  }
  return false;
}

// Properties every generated schedule must have, checked independently of the verifier.
void ExpectStructure(const PipelineSchedule& s) {
  const int P = s.stages, M = s.microbatches, V = s.virtual_stages, G = P * V;
  const bool split = s.kind == ScheduleKind::kZeroBubbleH1;
  ASSERT_EQ(static_cast<int>(s.ranks.size()), P);
  for (int r = 0; r < P; ++r) {
    const auto& list = s.ranks[r];
    ASSERT_FALSE(list.empty());
    EXPECT_EQ(list.back().kind, ActionKind::kOptimizerStep) << "rank " << r;
    std::map<std::pair<int, int>, int> forwards, backwards, weights;  // (chunk, mb) -> count
    std::vector<int> last_backward(V, -1), last_forward(V, -1), last_weight(V, -1);
    for (size_t i = 0; i < list.size(); ++i) {
      const Action& a = list[i];
      if (a.kind == ActionKind::kOptimizerStep) {
        EXPECT_EQ(i, list.size() - 1);
        continue;
      }
      const int g = a.chunk * P + r;
      const auto key = std::make_pair(a.chunk, a.microbatch);
      switch (a.kind) {
        case ActionKind::kForward:
          ++forwards[key];
          EXPECT_GT(a.microbatch, last_forward[a.chunk]) << "forwards out of order on rank " << r;
          last_forward[a.chunk] = a.microbatch;
          if (g > 0) {  // receive just before, send just after
            EXPECT_TRUE(Near(list, i, -1, A(ActionKind::kRecvActivation, a.microbatch, a.chunk, (g - 1) % P)))
                << "rank " << r << " action " << i;
          }
          if (g < G - 1) {
            EXPECT_TRUE(Near(list, i, +1, A(ActionKind::kSendActivation, a.microbatch, a.chunk, (g + 1) % P)))
                << "rank " << r << " action " << i;
          }
          break;
        case ActionKind::kBackward:
        case ActionKind::kBackwardInput:
          EXPECT_EQ(a.kind, split ? ActionKind::kBackwardInput : ActionKind::kBackward);
          ++backwards[key];
          EXPECT_EQ(forwards[key], 1) << "backward before forward on rank " << r;
          EXPECT_GT(a.microbatch, last_backward[a.chunk]) << "backward not in micro-batch order on rank " << r;
          last_backward[a.chunk] = a.microbatch;
          if (g < G - 1) {
            EXPECT_TRUE(Near(list, i, -1, A(ActionKind::kRecvGrad, a.microbatch, a.chunk, (g + 1) % P)))
                << "rank " << r << " action " << i;
          }
          if (g > 0) {
            EXPECT_TRUE(Near(list, i, +1, A(ActionKind::kSendGrad, a.microbatch, a.chunk, (g - 1) % P)))
                << "rank " << r << " action " << i;
          }
          break;
        case ActionKind::kBackwardWeight:
          EXPECT_TRUE(split);
          ++weights[key];
          EXPECT_EQ(backwards[key], 1) << "W before B on rank " << r;
          EXPECT_GT(a.microbatch, last_weight[a.chunk]);
          last_weight[a.chunk] = a.microbatch;
          break;
        default: break;
      }
    }
    for (int c = 0; c < V; ++c) {
      for (int mb = 0; mb < M; ++mb) {
        const auto key = std::make_pair(c, mb);
        EXPECT_EQ(forwards[key], 1) << "rank " << r << " chunk " << c << " mb " << mb;
        EXPECT_EQ(backwards[key], 1) << "rank " << r << " chunk " << c << " mb " << mb;
        EXPECT_EQ(weights[key], split ? 1 : 0) << "rank " << r << " chunk " << c << " mb " << mb;
      }
    }
  }
}

TEST(ScheduleTest, EveryGeneratorVerifies) {
  for (ScheduleKind kind : kKinds) {
    for (int P = 1; P <= 4; ++P) {
      for (int M = 1; M <= 9; ++M) {
        for (int V = 1; V <= 3; ++V) {
          SCOPED_TRACE(std::string(ScheduleKindName(kind)) + " P=" + std::to_string(P) + " M=" + std::to_string(M) +
                       " V=" + std::to_string(V));
          Result<PipelineSchedule> s = BuildSchedule(kind, P, M, V);
          if (!ShouldBuild(kind, P, M, V)) {
            EXPECT_FALSE(s.ok());
            EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
            continue;
          }
          ASSERT_TRUE(s.ok()) << s.status().ToString();
          EXPECT_EQ(s->kind, kind);
          EXPECT_EQ(s->stages, P);
          EXPECT_EQ(s->microbatches, M);
          EXPECT_EQ(s->virtual_stages, V);
          ExpectStructure(*s);
          EXPECT_TRUE(CheckScheduleStructure(*s).ok());
          ScheduleReport report = Verify(*s);
          ASSERT_EQ(static_cast<int>(report.peak_inflight.size()), P);
          ASSERT_EQ(static_cast<int>(report.spans.size()), P);
          EXPECT_GE(report.bubble_fraction, 0.0);
          EXPECT_LT(report.bubble_fraction, 1.0);
          // Uneven costs too.
          EXPECT_TRUE(VerifySchedule(*s, ScheduleCosts{1.0, 2.5, 0.75}).ok());
        }
      }
    }
  }
}

TEST(ScheduleTest, BuildRejectsBadArguments) {
  for (auto [kind, P, M, V, needle] : std::vector<std::tuple<ScheduleKind, int, int, int, std::string>>{
           {ScheduleKind::k1F1B, 0, 4, 1, "stages must be >= 1"},
           {ScheduleKind::k1F1B, 2, 0, 1, "microbatches must be >= 1"},
           {ScheduleKind::kInterleaved1F1B, 2, 4, 0, "virtual stages must be >= 1"},
           {ScheduleKind::kGPipe, 2, 4, 2, "need the interleaved schedule"},
           {ScheduleKind::kZeroBubbleH1, 2, 4, 2, "need the interleaved schedule"},
           {ScheduleKind::kInterleaved1F1B, 4, 6, 2, "microbatches (6) must be a multiple of stages (4)"},
       }) {
    Result<PipelineSchedule> s = BuildSchedule(kind, P, M, V);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.status().message().find(needle), std::string::npos) << s.status().message();
  }
}

TEST(ScheduleTest, ParseScheduleKindNames) {
  EXPECT_EQ(ParseScheduleKind("gpipe").value(), ScheduleKind::kGPipe);
  EXPECT_EQ(ParseScheduleKind("1f1b").value(), ScheduleKind::k1F1B);
  EXPECT_EQ(ParseScheduleKind("1F1B").value(), ScheduleKind::k1F1B);
  EXPECT_EQ(ParseScheduleKind("interleaved").value(), ScheduleKind::kInterleaved1F1B);
  EXPECT_EQ(ParseScheduleKind("zb-h1").value(), ScheduleKind::kZeroBubbleH1);
  EXPECT_EQ(ParseScheduleKind("GPIPE").value(), ScheduleKind::kGPipe);
  EXPECT_EQ(ParseScheduleKind("ONE_F_ONE_B").value(), ScheduleKind::k1F1B);
  EXPECT_EQ(ParseScheduleKind("INTERLEAVED_1F1B").value(), ScheduleKind::kInterleaved1F1B);
  EXPECT_EQ(ParseScheduleKind("ZERO_BUBBLE_H1").value(), ScheduleKind::kZeroBubbleH1);
  for (ScheduleKind kind : kKinds) EXPECT_EQ(ParseScheduleKind(ScheduleKindName(kind)).value(), kind);
  Result<ScheduleKind> bad = ParseScheduleKind("2f2b");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'2f2b'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("gpipe, 1f1b, interleaved, zb-h1"), std::string::npos);
}

TEST(ScheduleTest, GPipeAnd1F1BBubbleIsTextbook) {
  for (ScheduleKind kind : {ScheduleKind::kGPipe, ScheduleKind::k1F1B}) {
    for (int P = 1; P <= 4; ++P) {
      for (int M = 1; M <= 9; ++M) {
        ScheduleReport r = Verify(Build(kind, P, M), ScheduleCosts{1, 1, 1});  // F = 1, fused B = 2
        EXPECT_EQ(r.bubble_fraction, double(P - 1) / double(M + P - 1))
            << ScheduleKindName(kind) << " P=" << P << " M=" << M;
        EXPECT_EQ(r.makespan, 3.0 * (M + P - 1));
      }
    }
  }
}

TEST(ScheduleTest, PerRankCostsMakeTheSlowestStageSetThePace) {
  // 1F1B, 2 stages, 6 micro-batches; stage 1 takes twice as long per action. Its own work
  // (6 x 6) plus the first forward it waits for (1) is the makespan; stage 0 idles the rest.
  const PipelineSchedule s = Build(ScheduleKind::k1F1B, 2, 6);
  const std::vector<ScheduleCosts> same{ScheduleCosts{1, 1, 1}, ScheduleCosts{1, 1, 1}};
  EXPECT_EQ(VerifySchedule(s, {}, 0, &same).value().makespan, Verify(s, ScheduleCosts{1, 1, 1}).makespan);
  const std::vector<ScheduleCosts> slow_last{ScheduleCosts{1, 1, 1}, ScheduleCosts{2, 2, 2}};
  const ScheduleReport r = VerifySchedule(s, {}, 0, &slow_last).value();
  EXPECT_EQ(r.busy[0], 18.0);
  EXPECT_EQ(r.busy[1], 36.0);
  EXPECT_EQ(r.makespan, 1.0 + 36.0 + 2.0);  // + the last backward's gradient reaching stage 0
  const std::vector<ScheduleCosts> one{ScheduleCosts{1, 1, 1}};
  EXPECT_FALSE(VerifySchedule(s, {}, 0, &one).ok());
}

TEST(ScheduleTest, InterleavedBubbleIsSmallerThan1F1B) {
  for (int P = 2; P <= 4; ++P) {
    for (int M = P; M <= 16; M += P) {
      const double one_f_one_b = Verify(Build(ScheduleKind::k1F1B, P, M)).bubble_fraction;
      for (int V = 2; V <= 3; ++V) {
        const double interleaved = Verify(Build(ScheduleKind::kInterleaved1F1B, P, M, V)).bubble_fraction;
        EXPECT_LT(interleaved, one_f_one_b) << "P=" << P << " M=" << M << " V=" << V;
        // Megatron's schedule reaches the textbook (p-1)/(v m + p-1) with F = 1, B = 2 per chunk.
        EXPECT_EQ(interleaved, double(P - 1) / double(V * M + P - 1)) << "P=" << P << " M=" << M << " V=" << V;
      }
    }
  }
}

TEST(ScheduleTest, ZeroBubbleH1BubbleIsSmallerThan1F1B) {
  for (int P = 2; P <= 4; ++P) {
    for (int M = 1; M <= 16; ++M) {
      const double one_f_one_b = Verify(Build(ScheduleKind::k1F1B, P, M)).bubble_fraction;
      const ScheduleReport zb = Verify(Build(ScheduleKind::kZeroBubbleH1, P, M));
      EXPECT_LT(zb.bubble_fraction, one_f_one_b) << "P=" << P << " M=" << M;
      // With F = B = W and at least P micro-batches: the paper's (p-1)(F+B-W) idle time per rank.
      if (M >= P) {
        EXPECT_EQ(zb.bubble_fraction, double(P - 1) / double(3 * M + P - 1)) << "P=" << P << " M=" << M;
      }
      // 1F1B's activation memory: no rank holds more than 1F1B's first rank.
      for (int r = 0; r < P; ++r) EXPECT_LE(zb.peak_inflight[r], std::min(P, M));
    }
  }
}

TEST(ScheduleTest, PeakInflight) {
  for (int P = 1; P <= 4; ++P) {
    for (int M = 1; M <= 9; ++M) {
      const ScheduleReport one = Verify(Build(ScheduleKind::k1F1B, P, M));
      const ScheduleReport gpipe = Verify(Build(ScheduleKind::kGPipe, P, M));
      for (int r = 0; r < P; ++r) {
        EXPECT_LE(one.peak_inflight[r], P - r) << "1F1B P=" << P << " M=" << M << " rank " << r;
        EXPECT_EQ(one.peak_inflight[r], std::min(P - r, M)) << "1F1B P=" << P << " M=" << M << " rank " << r;
        EXPECT_EQ(gpipe.peak_inflight[r], M) << "GPipe P=" << P << " M=" << M << " rank " << r;
      }
    }
  }
}

TEST(ScheduleTest, OneFOneBSteadyStatePairsSendAndReceive) {
  // "send activation i / receive gradient j" are adjacent so the executor posts them together.
  const PipelineSchedule s = Build(ScheduleKind::k1F1B, 4, 8);
  for (int r = 0; r < 3; ++r) {
    const auto& list = s.ranks[r];
    bool paired = false;
    for (size_t i = 0; i + 1 < list.size(); ++i) {
      paired |= list[i].kind == ActionKind::kSendActivation && list[i + 1].kind == ActionKind::kRecvGrad;
    }
    EXPECT_TRUE(paired) << "rank " << r;
  }
}

TEST(ScheduleTest, SpansFollowTheCosts) {
  const ScheduleCosts costs{1.0, 2.0, 0.5};
  const PipelineSchedule s = Build(ScheduleKind::kZeroBubbleH1, 3, 5);
  const ScheduleReport r = Verify(s, costs);
  for (int rank = 0; rank < 3; ++rank) {
    double busy = 0, previous_end = 0;
    for (const ComputeSpan& sp : r.spans[rank]) {
      EXPECT_DOUBLE_EQ(sp.end - sp.start, ActionCost(s.ranks[rank][sp.action], costs));
      EXPECT_GE(sp.start, previous_end);
      previous_end = sp.end;
      busy += sp.end - sp.start;
    }
    EXPECT_DOUBLE_EQ(busy, 5 * 3.5);
    EXPECT_DOUBLE_EQ(r.busy[rank], busy);
    EXPECT_LE(previous_end, r.makespan);
  }
}

// ---- rejections ----

std::string Rejection(const PipelineSchedule& s, int memory_budget = 0) {
  Result<ScheduleReport> r = VerifySchedule(s, {}, memory_budget);
  EXPECT_FALSE(r.ok()) << ScheduleToString(s);
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  return r.status().message();
}

TEST(ScheduleVerifierTest, RejectsDeadlockBothReceiveFirst) {
  using K = ActionKind;
  const PipelineSchedule s = TwoRanks(
      {A(K::kRecvGrad, 0, 0, 1), A(K::kForward, 0), A(K::kSendActivation, 0, 0, 1), A(K::kBackward, 0), kOpt},
      {A(K::kRecvActivation, 0, 0, 0), A(K::kForward, 0), A(K::kBackward, 0), A(K::kSendGrad, 0, 0, 0), kOpt});
  EXPECT_TRUE(CheckScheduleStructure(s).ok());  // well-formed; only the simulation finds it
  const std::string m = Rejection(s);
  EXPECT_CONTAINS(m, "deadlock");
  EXPECT_CONTAINS(m, "rank 0 action 0 RecvGrad(mb 0, chunk 0, from rank 1) waits for rank 1's SendGrad");
  EXPECT_CONTAINS(m, "rank 1 action 0 RecvActivation(mb 0, chunk 0, from rank 0) waits for rank 0's SendActivation");
}

TEST(ScheduleVerifierTest, RejectsDeadlockOnOneRank) {
  // One rank, two chunks: receiving its own activation before sending it.
  using K = ActionKind;
  PipelineSchedule s{ScheduleKind::kInterleaved1F1B, 1, 1, 2,
                     {{A(K::kForward, 0, 0), A(K::kRecvActivation, 0, 1, 0), A(K::kSendActivation, 0, 0, 0),
                       A(K::kForward, 0, 1), A(K::kBackward, 0, 1), A(K::kSendGrad, 0, 1, 0),
                       A(K::kRecvGrad, 0, 0, 0), A(K::kBackward, 0, 0), kOpt}}};
  const std::string m = Rejection(s);
  EXPECT_CONTAINS(m, "deadlock");
  EXPECT_CONTAINS(m, "rank 0 action 1 RecvActivation(mb 0, chunk 1, from rank 0)");
}

TEST(ScheduleVerifierTest, RejectsUnmatchedSend) {
  PipelineSchedule s = Build(ScheduleKind::k1F1B, 2, 2);
  auto& rank1 = s.ranks[1];
  // Rank 1 never receives micro-batch 1's activation (and runs its forward without it).
  rank1.erase(std::find(rank1.begin(), rank1.end(), A(ActionKind::kRecvActivation, 1, 0, 0)));
  const std::string m = Rejection(s);
  const auto& rank0 = s.ranks[0];
  const int index = std::find(rank0.begin(), rank0.end(), A(ActionKind::kSendActivation, 1, 0, 1)) - rank0.begin();
  EXPECT_CONTAINS(m, "rank 0 action " + std::to_string(index) + " SendActivation(mb 1, chunk 0, to rank 1)");
  EXPECT_CONTAINS(m, "unmatched send");
  EXPECT_CONTAINS(m, "rank 1 has no RecvActivation(mb 1, chunk 0)");
}

TEST(ScheduleVerifierTest, RejectsUnmatchedReceive) {
  PipelineSchedule s = Build(ScheduleKind::kGPipe, 2, 2);
  auto& rank1 = s.ranks[1];
  rank1.erase(std::find(rank1.begin(), rank1.end(), A(ActionKind::kSendGrad, 0, 0, 0)));
  const std::string m = Rejection(s);
  EXPECT_CONTAINS(m, "RecvGrad(mb 0, chunk 0, from rank 1): unmatched receive: rank 1 has no SendGrad");
  EXPECT_CONTAINS(m, "rank 0 action ");
}

TEST(ScheduleVerifierTest, RejectsMissingBackward) {
  PipelineSchedule s = Build(ScheduleKind::kGPipe, 1, 2);
  auto& list = s.ranks[0];
  list.erase(std::find(list.begin(), list.end(), A(ActionKind::kBackward, 1)));
  const std::string m = Rejection(s);
  EXPECT_CONTAINS(m, "rank 0: Forward(mb 1, chunk 0) (action 1) has no backward");
}

TEST(ScheduleVerifierTest, RejectsMissingWeightPass) {
  PipelineSchedule s = Build(ScheduleKind::kZeroBubbleH1, 1, 2);
  auto& list = s.ranks[0];
  list.erase(std::find(list.begin(), list.end(), A(ActionKind::kBackwardWeight, 0)));
  EXPECT_CONTAINS(Rejection(s), "rank 0: BackwardWeight(mb 0, chunk 0) is missing (BackwardInput is action 1)");
}

TEST(ScheduleVerifierTest, RejectsOverMemoryBudget) {
  const PipelineSchedule s = Build(ScheduleKind::kGPipe, 2, 4);
  for (int budget = 1; budget < 4; ++budget) {
    const std::string m = Rejection(s, budget);
    // Rank 0's list: F0 SendAct0 F1 SendAct1 ...: micro-batch `budget` is action 2 x budget.
    EXPECT_CONTAINS(m, "rank 0 action " + std::to_string(2 * budget) + " Forward(mb " + std::to_string(budget) +
                           ", chunk 0)");
    EXPECT_CONTAINS(m, "would hold the activations of " + std::to_string(budget + 1) + " micro-batches");
    EXPECT_CONTAINS(m, "over the memory budget of " + std::to_string(budget));
  }
  EXPECT_TRUE(VerifySchedule(s, {}, 4).ok());
  // 1F1B fits in P micro-batches; GPipe does not.
  EXPECT_TRUE(VerifySchedule(Build(ScheduleKind::k1F1B, 4, 8), {}, 4).ok());
  EXPECT_TRUE(VerifySchedule(Build(ScheduleKind::kZeroBubbleH1, 4, 8), {}, 4).ok());
  EXPECT_FALSE(VerifySchedule(Build(ScheduleKind::k1F1B, 4, 8), {}, 3).ok());
  EXPECT_FALSE(VerifySchedule(Build(ScheduleKind::kGPipe, 4, 8), {}, 7).ok());
}

TEST(ScheduleVerifierTest, RejectsBrokenOrder) {
  using K = ActionKind;
  struct Case {
    std::vector<Action> list;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{A(K::kBackward, 0), A(K::kForward, 0), kOpt}, "rank 0 action 0 Backward(mb 0, chunk 0): backward before"},
      {{A(K::kForward, 0), A(K::kBackwardWeight, 0), A(K::kBackwardInput, 0), kOpt},
       "rank 0 action 1 BackwardWeight(mb 0, chunk 0): W before B"},
      {{A(K::kForward, 0), A(K::kForward, 0), A(K::kBackward, 0), kOpt},
       "rank 0 action 1 Forward(mb 0, chunk 0): duplicate of action 0"},
      {{A(K::kForward, 0), A(K::kBackward, 0), A(K::kBackwardInput, 0), A(K::kBackwardWeight, 0), kOpt},
       "rank 0 action 2 BackwardInput(mb 0, chunk 0): (mb 0, chunk 0) already has a backward (action 1)"},
      {{A(K::kForward, 0), kOpt, A(K::kBackward, 0)}, "the last action must be OptimizerStep"},
      {{A(K::kForward, 0), kOpt, A(K::kBackward, 0), kOpt},
       "rank 0 action 1 OptimizerStep: OptimizerStep must be the last action"},
      {{A(K::kForward, 0), A(K::kBackward, 0)}, "rank 0: the last action must be OptimizerStep"},
      {{A(K::kForward, 0), A(K::kBackward, 0), A(K::kForward, 1), A(K::kBackward, 1), kOpt},
       "rank 0 action 2 Forward(mb 1, chunk 0): micro-batch out of range [0, 1)"},
      {{A(K::kRecvActivation, 0, 0, 0), A(K::kForward, 0), A(K::kBackward, 0), kOpt},
       "rank 0 action 0 RecvActivation(mb 0, chunk 0, from rank 0): global chunk 0 has no such message"},
  };
  for (const Case& c : cases) {
    const PipelineSchedule s{ScheduleKind::k1F1B, 1, 1, 1, {c.list}};
    EXPECT_CONTAINS(Rejection(s), c.needle);
  }
}

TEST(ScheduleVerifierTest, RejectsWrongPeerAndMissingReceive) {
  using K = ActionKind;
  EXPECT_CONTAINS(Rejection(TwoRanks({A(K::kForward, 0), A(K::kSendActivation, 0, 0, 0), A(K::kRecvGrad, 0, 0, 1),
                                      A(K::kBackward, 0), kOpt},
                                     {A(K::kRecvActivation, 0, 0, 0), A(K::kForward, 0), A(K::kBackward, 0),
                                      A(K::kSendGrad, 0, 0, 0), kOpt})),
                  "rank 0 action 1 SendActivation(mb 0, chunk 0, to rank 0): peer must be rank 1");
  // The forward on rank 1 runs before the receive of its input.
  EXPECT_CONTAINS(Rejection(TwoRanks({A(K::kForward, 0), A(K::kSendActivation, 0, 0, 1), A(K::kRecvGrad, 0, 0, 1),
                                      A(K::kBackward, 0), kOpt},
                                     {A(K::kForward, 0), A(K::kRecvActivation, 0, 0, 0), A(K::kBackward, 0),
                                      A(K::kSendGrad, 0, 0, 0), kOpt})),
                  "rank 1 action 0 Forward(mb 0, chunk 0): its input has not been received");
}

// ---- timeline ----

TEST(ScheduleTimelineTest, ShowsRanksAndLegend) {
  const PipelineSchedule s = Build(ScheduleKind::k1F1B, 4, 8);
  const std::string t = RenderTimeline(s, Verify(s));
  for (int r = 0; r < 4; ++r) EXPECT_CONTAINS(t, "rank " + std::to_string(r) + " |");
  EXPECT_CONTAINS(t, "rank 0 | F0 F1 F2 F3 .  .  .  .  .  .  B0--- F4 B1--- F5");
  EXPECT_CONTAINS(t, "rank 3 | .  .  .  F0 B0--- F1 B1--- F2");
  EXPECT_CONTAINS(t, "legend");
}

TEST(ScheduleTimelineTest, MarksChunksAndSplitBackward) {
  const PipelineSchedule inter = Build(ScheduleKind::kInterleaved1F1B, 2, 4, 2);
  const std::string t = RenderTimeline(inter, Verify(inter));
  EXPECT_CONTAINS(t, "F0a");
  EXPECT_CONTAINS(t, "F0b");
  EXPECT_CONTAINS(t, "B3a");
  EXPECT_CONTAINS(t, "suffix a/b = model chunk 0/1");
  const PipelineSchedule zb = Build(ScheduleKind::kZeroBubbleH1, 2, 4);
  const std::string z = RenderTimeline(zb, Verify(zb));
  EXPECT_CONTAINS(z, "W3");
  EXPECT_CONTAINS(z, "weight-gradient");
}

TEST(ScheduleTimelineTest, StaysUnder200Columns) {
  for (ScheduleKind kind : kKinds) {
    for (int M : {8, 16, 64}) {
      const PipelineSchedule s = Build(kind, 4, M, kind == ScheduleKind::kInterleaved1F1B ? 2 : 1);
      std::istringstream in(RenderTimeline(s, Verify(s)));
      int rows = 0;
      for (std::string line; std::getline(in, line);) {
        EXPECT_LE(line.size(), 200u) << line;
        rows += line.rfind("rank 0 |", 0) == 0;
      }
      EXPECT_GE(rows, 1);
    }
  }
}

TEST(ScheduleTimelineTest, FractionalCosts) {
  const PipelineSchedule s = Build(ScheduleKind::kZeroBubbleH1, 2, 2);
  const std::string t = RenderTimeline(s, Verify(s, ScheduleCosts{1, 1, 0.5}));
  EXPECT_CONTAINS(t, "one cell = 0.5 time units");
  EXPECT_CONTAINS(t, "F0---");  // a forward spans two half-unit cells
}

}  // namespace
}  // namespace baton
