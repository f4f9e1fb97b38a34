// Where each pipeline rank's step time goes, from a profiled step's phases
// (StageExecutor times every compute action; PipelineTrainer every phase of
// the step), for the pipeline benchmark:
//   compute        forward + backward (+ weight-gradient) actions;
//   idle           forward-and-backward span minus compute: the compute
//                  stream waited for a message;
//   bubble         the idle this schedule implies with free communication:
//                  the schedule simulated (VerifySchedule) with the measured
//                  mean action times, its idle per rank scaled to this rank's
//                  measured speed;
//   exposed comm   idle beyond the bubble: waiting that communication caused;
//   after          gradient reduction, norm, optimizer and weight copies (the
//                  data-parallel reduction's wait shows in "gradient reduction").
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "pipeline/schedule.h"
#include "runtime/op_profile.h"
#include "runtime/status.h"
#include "runtime/transport.h"

namespace baton {

// Collective over `world` (every rank passes its own profile of `steps` steps);
// rank 0 gets a JSON array with one object per rank, the others an empty array.
Result<nlohmann::json> StageBreakdown(const std::vector<OpProfile::Entry>& profile, int steps,
                                      const PipelineSchedule& schedule, int stage, int replica, Transport* world);

// Prints the table of a StageBreakdown result.
void PrintStageBreakdown(const nlohmann::json& ranks);

}  // namespace baton
