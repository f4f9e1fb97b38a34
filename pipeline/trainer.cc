#include "pipeline/trainer.h"

#include <cmath>
#include <memory>

#include "optim/grad_clip.h"
#include "runtime/timer.h"

namespace baton {

Result<double> FinishStepGradients(const StepMetrics& m, const TrainerOptions& options,
                                   const std::vector<Param*>& params) {
  if (!std::isfinite(m.grad_norm) || !std::isfinite(m.loss)) {
    return Status::Internal("step " + std::to_string(m.step) + ": loss " + std::to_string(m.loss) +
                            ", gradient norm " + std::to_string(m.grad_norm) +
                            " is not finite; the update was not applied (lower optim.lr or set optim.clip_grad_norm)");
  }
  const double clip = ClipFactor(m.grad_norm, options.clip_grad_norm);
  if (clip != 1.0) ScaleGrads(params, clip);
  return LearningRateAt(options.lr, m.step);
}

DType ComputeTypeFor(Device device) { return device.is_cpu() ? DType::kF32 : DType::kBF16; }

void RefreshComputeCopies(const std::vector<Param*>& params) {
  for (Param* p : params) p->RefreshCompute();
}

namespace {
std::vector<Layer*> LayerPointers(const Model& model) {
  std::vector<Layer*> out;
  for (const auto& layer : model.layers()) out.push_back(layer.get());
  return out;
}
}  // namespace

Trainer::Trainer(Model* model, Adafactor* optimizer, TrainerOptions options)
    : model_(model), optimizer_(optimizer), options_(options), params_(model->params()),
      runner_(LayerPointers(*model), options.recompute) {}

Result<StepMetrics> Trainer::Step(int64_t step, std::vector<MicroBatch> micro_batches) {
  Timer timer;
  int64_t tokens = 0, targets = 0;
  for (const MicroBatch& mb : micro_batches) {
    tokens += mb.tokens.numel();
    targets += mb.LossTargets();
  }
  if (targets == 0) return Status::InvalidArgument("step " + std::to_string(step) + ": no position has a target");
  for (Param* p : params_) p->grad.SetZero();

  Allocator& memory = AllocatorFor(options_.device);
  const int64_t bytes_before = memory.Stats().current_bytes;
  memory.ResetPeak();
  double loss_sum = 0;
  {
    MemoryScope scope(MemoryCategory::kActivations);
    for (size_t i = 0; i < micro_batches.size(); ++i) {
      MicroBatch mb = micro_batches[i].To(options_.device);
      mb.loss_scale = 1.0 / static_cast<double>(targets);
      loss_sum += runner_.Forward(static_cast<int>(i), mb, Tensor()).data<double>()[0];
      runner_.Backward(static_cast<int>(i), mb, Tensor());
    }
  }

  model_->FoldTiedGradients();

  StepMetrics m;
  m.step = step;
  m.peak_activation_bytes = memory.Stats().peak_bytes - bytes_before;
  m.tokens = tokens;
  m.loss_targets = targets;
  m.loss = loss_sum / static_cast<double>(targets);
  m.grad_norm = std::sqrt(SquaredGradNorm(params_));
  BATON_ASSIGN_OR_RETURN(m.lr, FinishStepGradients(m, options_, params_));
  optimizer_->Step(step, m.lr);
  RefreshComputeCopies(params_);
  m.memory = memory.Stats();
  SynchronizeDevice(options_.device);  // the step's time includes the device's work
  m.seconds = timer.Seconds();
  return m;
}

double Trainer::Evaluate(const std::vector<MicroBatch>& micro_batches) const {
  double loss_sum = 0;
  int64_t targets = 0;
  for (const MicroBatch& host_mb : micro_batches) {
    targets += host_mb.LossTargets();
    const MicroBatch mb = host_mb.To(options_.device);
    Tensor x;
    for (const auto& layer : model_->layers()) x = layer->Forward(mb, x, nullptr);
    loss_sum += x.data<double>()[0];
  }
  return targets ? loss_sum / static_cast<double>(targets) : 0.0;
}

}  // namespace baton
