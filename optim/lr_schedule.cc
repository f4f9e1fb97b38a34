#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace baton {
namespace {
const double kPi = std::acos(-1.0);
}  // namespace

Status ValidateLrSchedule(const LrScheduleOptions& o) {
  if (!(o.lr > 0) || !std::isfinite(o.lr))
    return Status::InvalidArgument("optim.lr = " + std::to_string(o.lr) + ": must be > 0");
  if (o.warmup_steps < 0)
    return Status::InvalidArgument("optim.warmup_steps = " + std::to_string(o.warmup_steps) + ": must be >= 0");
  if (o.kind == LrScheduleKind::kLinear || o.kind == LrScheduleKind::kCosine) {
    if (!(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1))
      return Status::InvalidArgument("optim.min_lr_ratio = " + std::to_string(o.min_lr_ratio) +
                                     ": must be in [0, 1]");
    if (o.total_steps <= o.warmup_steps)
      return Status::InvalidArgument("train.steps = " + std::to_string(o.total_steps) +
                                     ": must be > optim.warmup_steps (" + std::to_string(o.warmup_steps) + ") for a " +
                                     LrScheduleKindName(o.kind) + " decay");
  }
  return Status::OK();
}

double LearningRateAt(const LrScheduleOptions& o, int64_t step) {
  BATON_CHECK(step >= 1, "learning-rate steps are 1-based, got " << step);
  const double t = static_cast<double>(step);
  const double warm = o.warmup_steps > 0 ? std::min(1.0, t / static_cast<double>(o.warmup_steps)) : 1.0;
  double base = o.lr;
  switch (o.kind) {
    case LrScheduleKind::kRelativeStep:
      base = std::min(o.lr, 1.0 / std::sqrt(t));
      break;
    case LrScheduleKind::kConstant:
      break;
    case LrScheduleKind::kLinear:
    case LrScheduleKind::kCosine: {
      // Decay progress p runs from 0 at the end of warm-up to 1 at total_steps.
      const double span = static_cast<double>(o.total_steps - o.warmup_steps);
      const double p = span > 0 ? std::clamp((t - static_cast<double>(o.warmup_steps)) / span, 0.0, 1.0) : 1.0;
      const double shape = o.kind == LrScheduleKind::kLinear ? 1.0 - p : 0.5 * (1.0 + std::cos(kPi * p));
      base = o.lr * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * shape);
      break;
    }
  }
  return warm * base;
}

const char* LrScheduleKindName(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::kRelativeStep: return "relative_step";
    case LrScheduleKind::kConstant: return "constant";
    case LrScheduleKind::kLinear: return "linear";
    case LrScheduleKind::kCosine: return "cosine";
  }
  return "?";
}

}  // namespace baton
