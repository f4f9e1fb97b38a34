// Schedules for the schedule tests (schedule_test.cc, stream_order_test.cc):
// every generator x size to try, and hand-built lists.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pipeline/schedule.h"
#include "pipeline/schedule_verifier.h"

namespace baton {
namespace testing {

inline constexpr ScheduleKind kKinds[] = {ScheduleKind::kGPipe, ScheduleKind::k1F1B, ScheduleKind::kInterleaved1F1B,
                                   ScheduleKind::kZeroBubbleH1};

inline bool ShouldBuild(ScheduleKind kind, int P, int M, int V) {
  if (V > 1 && kind != ScheduleKind::kInterleaved1F1B) return false;
  if (V > 1 && M % P != 0) return false;
  return true;
}

inline PipelineSchedule Build(ScheduleKind kind, int P, int M, int V = 1) {
  Result<PipelineSchedule> s = BuildSchedule(kind, P, M, V);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

inline ScheduleReport Verify(const PipelineSchedule& s, ScheduleCosts costs = {}) {
  Result<ScheduleReport> r = VerifySchedule(s, costs);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << ScheduleToString(s);
  return r.ok() ? r.value() : ScheduleReport{};
}

inline Action A(ActionKind kind, int mb, int chunk = 0, int peer = -1) { return Action{kind, mb, chunk, peer}; }
inline const Action kOpt{ActionKind::kOptimizerStep, -1, 0, -1};

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "message: " << (haystack)

inline PipelineSchedule TwoRanks(std::vector<Action> rank0, std::vector<Action> rank1, int microbatches = 1) {
  return PipelineSchedule{ScheduleKind::k1F1B, 2, microbatches, 1, {std::move(rank0), std::move(rank1)}};
}

}  // namespace testing
}  // namespace baton
