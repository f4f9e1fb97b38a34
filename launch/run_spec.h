// Turns the validated run configuration into what the lower layers take:
// the model's shape, AdaFactor's options, the learning-rate schedule. Only
// launch/ knows about protobuf; layers/ and optim/ get plain structs.
#pragma once

#include "layers/model_spec.h"
#include "optim/adafactor.h"
#include "optim/lr_schedule.h"
#include "pipeline/chunk_runner.h"
#include "pipeline/stage_layout.h"
#include "proto/config.pb.h"

namespace baton {

ModelSpec ModelSpecFromConfig(const ModelConfig& model);

AdafactorOptions AdafactorOptionsFromConfig(const OptimConfig& optim);
LrScheduleOptions LrScheduleFromConfig(const OptimConfig& optim, int64_t total_steps);
// The policy of pipeline stage `stage`: parallel.stage_recompute[stage] when given, else parallel.recompute.
RecomputePolicy RecomputeFromConfig(const ParallelConfig& parallel, int stage = 0);
// parallel.stage_layers, or a FLOP-balanced layout; errors name `source`.
Result<StageLayout> LayoutFromConfig(const RunConfig& config, const ModelSpec& spec, const std::string& source);

}  // namespace baton
