// CheckStreamOrderedExchange: schedules on a transport without tags and with
// one ordered communication stream per rank (NCCL).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "pipeline/schedule.h"
#include "pipeline/schedule_verifier.h"
#include "tests/pipeline/schedule_fixtures.h"

namespace baton {
namespace {
using namespace testing;  // NOLINT

std::string StreamRejection(const PipelineSchedule& s) {
  const Status st = CheckStreamOrderedExchange(s);
  EXPECT_FALSE(st.ok()) << ScheduleToString(s);
  if (st.ok()) return "";
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  return st.message();
}

// Every schedule the generators build runs on a transport without tags and with
// one ordered stream per rank (NCCL). Interleaved 1F1B needs the steady state's
// forward and backward listed between their four messages (RecvA RecvG F B
// SendA SendG, Megatron's send_forward_backward_recv_forward_backward):
// listed as F's messages around F and B's around B, two neighbours each end up
// sending in a lone group while the matching receive waits in a later one.
TEST(StreamOrderTest, EveryGeneratedScheduleRunsOnOrderedStreams) {
  std::string unexpected;
  int checked = 0;
  for (ScheduleKind kind : kKinds) {
    for (int V = 1; V <= 3; ++V) {
      for (int P = 1; P <= 8; ++P) {
        for (int M = 1; M <= 16; ++M) {
          if (!ShouldBuild(kind, P, M, V)) continue;
          const PipelineSchedule s = Build(kind, P, M, V);
          ++checked;
          const Status st = CheckStreamOrderedExchange(s);
          const std::string name = std::string(ScheduleKindName(kind)) + " P=" + std::to_string(P) +
                                   " M=" + std::to_string(M) + " V=" + std::to_string(V);
          if (!st.ok()) unexpected += name + ": " + st.message() + "\n";
        }
      }
    }
  }
  // GPipe, 1F1B, ZB-H1 and interleaved V = 1: P 1..8 x M 1..16; interleaved
  // V = 2, 3: M a multiple of P.
  EXPECT_EQ(checked, 3 * 8 * 16 + 8 * 16 + 2 * (16 + 8 + 5 + 4 + 3 + 2 + 2 + 2));
  EXPECT_TRUE(unexpected.empty()) << unexpected;
}

TEST(StreamOrderTest, RejectsDeadlockWhenBothRanksSendFirst) {
  // After micro-batch 0's activation, both ranks send in a group of their own
  // (rank 0 micro-batch 1's activation, rank 1 micro-batch 0's gradient) and
  // post the matching receive only in a later group. Buffered MPI sends get
  // through; with rendezvous each send waits for the other rank's receive.
  using K = ActionKind;
  const PipelineSchedule s{
      ScheduleKind::kZeroBubbleH1, 2, 3, 1,
      {{A(K::kForward, 0), A(K::kSendActivation, 0, 0, 1),                                  // group 0
        A(K::kForward, 1), A(K::kSendActivation, 1, 0, 1),                                  // group 1
        A(K::kForward, 2), A(K::kSendActivation, 2, 0, 1), A(K::kRecvGrad, 0, 0, 1),        // group 2
        A(K::kBackwardInput, 0), A(K::kBackwardWeight, 0), A(K::kRecvGrad, 1, 0, 1),        // group 3
        A(K::kBackwardInput, 1), A(K::kBackwardWeight, 1), A(K::kRecvGrad, 2, 0, 1),        // group 4
        A(K::kBackwardInput, 2), A(K::kBackwardWeight, 2), kOpt},
       {A(K::kRecvActivation, 0, 0, 0), A(K::kForward, 0), A(K::kBackwardInput, 0),        // group 0
        A(K::kSendGrad, 0, 0, 0), A(K::kBackwardWeight, 0),                                 // group 1
        A(K::kRecvActivation, 1, 0, 0), A(K::kForward, 1), A(K::kBackwardInput, 1),        // group 2
        A(K::kSendGrad, 1, 0, 0), A(K::kBackwardWeight, 1),                                 // group 3
        A(K::kRecvActivation, 2, 0, 0), A(K::kForward, 2), A(K::kBackwardInput, 2),        // group 4
        A(K::kSendGrad, 2, 0, 0), A(K::kBackwardWeight, 2), kOpt}}};
  EXPECT_TRUE(VerifySchedule(s).ok());  // fine with MPI semantics
  const std::string m = StreamRejection(s);
  EXPECT_CONTAINS(m, "deadlock");
  EXPECT_CONTAINS(m, "rank 0 is stuck in its group 1 (action 3: SendActivation(mb 1, chunk 0, to rank 1)), where "
                     "SendActivation(mb 1, chunk 0, to rank 1) waits for rank 1 action 5 RecvActivation(mb 1, chunk 0, "
                     "from rank 0), which is in its group 2 but rank 1 is in group 1");
  EXPECT_CONTAINS(m, "rank 1 is stuck in its group 1 (action 3: SendGrad(mb 0, chunk 0, to rank 0)), where "
                     "SendGrad(mb 0, chunk 0, to rank 0) waits for rank 0 action 6 RecvGrad(mb 0, chunk 0, "
                     "from rank 1), which is in its group 2 but rank 0 is in group 1");

  // Rank 1 posting each gradient together with the receive of the next
  // activation breaks the cycle: rank 0's pending send meets that receive, and
  // rank 0 moves on to the receive of the gradient.
  PipelineSchedule paired = s;
  paired.ranks[1] = {A(K::kRecvActivation, 0, 0, 0), A(K::kForward, 0), A(K::kBackwardInput, 0),
                     A(K::kSendGrad, 0, 0, 0), A(K::kRecvActivation, 1, 0, 0),  // group 1
                     A(K::kForward, 1), A(K::kBackwardWeight, 0), A(K::kBackwardInput, 1),
                     A(K::kSendGrad, 1, 0, 0), A(K::kRecvActivation, 2, 0, 0),  // group 2
                     A(K::kForward, 2), A(K::kBackwardWeight, 1), A(K::kBackwardInput, 2),
                     A(K::kSendGrad, 2, 0, 0), A(K::kBackwardWeight, 2), kOpt};
  EXPECT_TRUE(VerifySchedule(paired).ok());
  const Status st = CheckStreamOrderedExchange(paired);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(StreamOrderTest, RejectsMessagesInADifferentOrderOnTheTwoSides) {
  // Rank 0 sends micro-batch 0, then 1; rank 1 takes 1 first. Tags match them
  // under MPI; in posting order micro-batch 0's activation would land in
  // micro-batch 1's receive.
  using K = ActionKind;
  const PipelineSchedule s = TwoRanks(
      {A(K::kForward, 0), A(K::kSendActivation, 0, 0, 1), A(K::kForward, 1), A(K::kSendActivation, 1, 0, 1),
       A(K::kRecvGrad, 1, 0, 1), A(K::kBackward, 1), A(K::kRecvGrad, 0, 0, 1), A(K::kBackward, 0), kOpt},
      {A(K::kRecvActivation, 1, 0, 0), A(K::kForward, 1), A(K::kBackward, 1), A(K::kSendGrad, 1, 0, 0),
       A(K::kRecvActivation, 0, 0, 0), A(K::kForward, 0), A(K::kBackward, 0), A(K::kSendGrad, 0, 0, 0), kOpt},
      2);
  EXPECT_TRUE(VerifySchedule(s).ok());
  EXPECT_CONTAINS(StreamRejection(s),
                  "message order mismatch from rank 0 to rank 1: send 0 of rank 0 to rank 1 is rank 0 action 1 "
                  "SendActivation(mb 0, chunk 0, to rank 1), but receive 0 of rank 1 from rank 0 is rank 1 action 0 "
                  "RecvActivation(mb 1, chunk 0, from rank 0)");

  // The gradients only (rank 1 returns them in the order rank 0 does not expect).
  const PipelineSchedule grads = TwoRanks(
      {A(K::kForward, 0), A(K::kSendActivation, 0, 0, 1), A(K::kForward, 1), A(K::kSendActivation, 1, 0, 1),
       A(K::kRecvGrad, 0, 0, 1), A(K::kBackward, 0), A(K::kRecvGrad, 1, 0, 1), A(K::kBackward, 1), kOpt},
      {A(K::kRecvActivation, 0, 0, 0), A(K::kForward, 0), A(K::kRecvActivation, 1, 0, 0), A(K::kForward, 1),
       A(K::kBackward, 1), A(K::kSendGrad, 1, 0, 0), A(K::kBackward, 0), A(K::kSendGrad, 0, 0, 0), kOpt},
      2);
  EXPECT_TRUE(VerifySchedule(grads).ok());
  EXPECT_CONTAINS(StreamRejection(grads),
                  "message order mismatch from rank 1 to rank 0: send 0 of rank 1 to rank 0 is rank 1 action 5 "
                  "SendGrad(mb 1, chunk 0, to rank 0), but receive 0 of rank 0 from rank 1 is rank 0 action 4 "
                  "RecvGrad(mb 0, chunk 0, from rank 1)");
}

TEST(StreamOrderTest, MessagesToItselfAreNotPosted) {
  // One rank, two chunks: the hand-over between them is in memory, so there
  // is nothing to order and nothing to wait for.
  const PipelineSchedule s = Build(ScheduleKind::kInterleaved1F1B, 1, 3, 2);
  const Status st = CheckStreamOrderedExchange(s);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(StreamOrderTest, RunsTheStructuralChecksFirst) {
  PipelineSchedule s = Build(ScheduleKind::k1F1B, 2, 2);
  auto& rank1 = s.ranks[1];
  rank1.erase(std::find(rank1.begin(), rank1.end(), A(ActionKind::kRecvActivation, 1, 0, 0)));
  EXPECT_CONTAINS(StreamRejection(s), "unmatched send");
}

}  // namespace
}  // namespace baton
