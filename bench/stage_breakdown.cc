#include "bench/stage_breakdown.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>

#include "pipeline/schedule_verifier.h"

namespace baton {
namespace {

// Per rank, what every rank sends: the phase times of one step, and action counts.
enum Field { kStage, kReplica, kForward, kBackward, kWeight, kForwards, kBackwards, kWeights, kSpan, kReduction,
             kNorm, kOptimizer, kCopies, kFields };

}  // namespace

Result<nlohmann::json> StageBreakdown(const std::vector<OpProfile::Entry>& profile, int steps,
                                      const PipelineSchedule& schedule, int stage, int replica, Transport* world) {
  std::map<std::string, OpProfile::Entry> by_name;
  for (const OpProfile::Entry& e : profile) by_name[e.name] = e;
  auto ms = [&](const char* name) { return by_name.count(name) ? by_name[name].ms / steps : 0.0; };
  auto calls = [&](const char* name) { return by_name.count(name) ? static_cast<double>(by_name[name].calls) / steps : 0.0; };
  std::vector<double> mine(kFields);
  mine[kStage] = stage;
  mine[kReplica] = replica;
  mine[kForward] = ms("phase: pipeline forward");
  mine[kBackward] = ms("phase: pipeline backward");
  mine[kWeight] = ms("phase: pipeline weight gradients");
  mine[kForwards] = calls("phase: pipeline forward");
  mine[kBackwards] = calls("phase: pipeline backward");
  mine[kWeights] = calls("phase: pipeline weight gradients");
  mine[kSpan] = ms("phase: forward and backward");
  mine[kReduction] = ms("phase: gradient reduction");
  mine[kNorm] = ms("phase: gradient norm and clipping");
  mine[kOptimizer] = ms("phase: optimizer");
  mine[kCopies] = ms("phase: bf16 weight copies");
  BATON_ASSIGN_OR_RETURN(std::vector<double> all, AllGatherValues(world, mine));
  nlohmann::json out = nlohmann::json::array();
  if (world->rank() != 0) return out;
  const size_t ranks = all.size() / kFields;
  auto at = [&](size_t r, Field f) { return all[r * kFields + f]; };

  // Each stage's mean action times (over its replicas) -> the schedule's own idle with free
  // communication, imbalance between stages included.
  const int stages = schedule.stages;
  std::vector<std::array<double, 6>> sums(static_cast<size_t>(stages), std::array<double, 6>{});
  for (size_t r = 0; r < ranks; ++r) {
    std::array<double, 6>& t = sums[static_cast<size_t>(at(r, kStage))];
    for (int k = 0; k < 6; ++k) t[k] += at(r, static_cast<Field>(kForward + k));
  }
  std::vector<ScheduleCosts> costs(static_cast<size_t>(stages));
  for (int st = 0; st < stages; ++st) {
    const std::array<double, 6>& t = sums[static_cast<size_t>(st)];
    costs[st].forward = t[3] > 0 ? t[0] / t[3] : 1;
    costs[st].backward_input = t[4] > 0 ? t[1] / t[4] : 2;
    costs[st].backward_weight = t[5] > 0 ? t[2] / t[5] : 0;
  }
  BATON_ASSIGN_OR_RETURN(ScheduleReport sim, VerifySchedule(schedule, ScheduleCosts{}, 0, &costs));
  for (size_t r = 0; r < ranks; ++r) {
    const int s = static_cast<int>(at(r, kStage));
    const double compute = at(r, kForward) + at(r, kBackward) + at(r, kWeight);
    const double idle = std::max(0.0, at(r, kSpan) - compute);
    const double simulated_busy = sim.busy[static_cast<size_t>(s)];
    const double bubble = simulated_busy > 0 ? (sim.makespan - simulated_busy) * compute / simulated_busy : 0;
    const double after = at(r, kReduction) + at(r, kNorm) + at(r, kOptimizer) + at(r, kCopies);
    out.push_back({{"rank", r}, {"stage", s}, {"replica", static_cast<int>(at(r, kReplica))},
                   {"forward_ms", at(r, kForward)}, {"backward_ms", at(r, kBackward)},
                   {"weight_grad_ms", at(r, kWeight)}, {"compute_ms", compute}, {"span_ms", at(r, kSpan)},
                   {"idle_ms", idle}, {"bubble_ms", std::min(idle, bubble)},
                   {"exposed_comm_ms", std::max(0.0, idle - bubble)}, {"gradient_reduction_ms", at(r, kReduction)},
                   {"optimizer_ms", at(r, kOptimizer)}, {"after_ms", after},
                   {"step_ms", at(r, kSpan) + after}, {"simulated_bubble_fraction", sim.bubble_fraction}});
  }
  return out;
}

void PrintStageBreakdown(const nlohmann::json& ranks) {
  std::printf("\n%5s %6s %8s %10s %10s %10s %10s %12s %12s %10s\n", "rank", "stage", "replica", "step ms",
              "compute", "idle", "bubble", "exposed comm", "grad reduce", "optimizer");
  for (const auto& r : ranks)
    std::printf("%5d %6d %8d %10.1f %10.1f %10.1f %10.1f %12.1f %12.1f %10.1f\n", r["rank"].get<int>(),
                r["stage"].get<int>(), r["replica"].get<int>(), r["step_ms"].get<double>(),
                r["compute_ms"].get<double>(), r["idle_ms"].get<double>(), r["bubble_ms"].get<double>(),
                r["exposed_comm_ms"].get<double>(), r["gradient_reduction_ms"].get<double>(),
                r["optimizer_ms"].get<double>());
}

}  // namespace baton
