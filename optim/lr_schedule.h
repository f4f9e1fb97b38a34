// Learning-rate schedules: the `rate` handed to Adafactor::Step each step.
#pragma once

#include <cstdint>

#include "runtime/status.h"

namespace baton {

enum class LrScheduleKind {
  kRelativeStep,  // the paper's rho_t = min(lr, 1/sqrt(t)); lr = 1e-2 gives the paper's value
  kConstant,      // lr
  kLinear,        // lr at the end of warm-up, linearly down to min_lr_ratio * lr at total_steps
  kCosine,        // same end points, half a cosine in between
};

struct LrScheduleOptions {
  LrScheduleKind kind = LrScheduleKind::kRelativeStep;
  double lr = 1e-2;
  int64_t warmup_steps = 0;    // > 0: every kind is multiplied by min(1, t / warmup_steps)
  double min_lr_ratio = 0.1;   // kLinear / kCosine: final rate as a fraction of lr
  int64_t total_steps = 1;     // kLinear / kCosine: the step at which the decay ends (held after)
};

// InvalidArgument naming the field when an option is out of range.
Status ValidateLrSchedule(const LrScheduleOptions& options);

// The rate at step `step` (1-based).
double LearningRateAt(const LrScheduleOptions& options, int64_t step);

const char* LrScheduleKindName(LrScheduleKind kind);  // "relative_step", "constant", "linear", "cosine"

}  // namespace baton
