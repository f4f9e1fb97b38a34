// The training step of one process: gradient accumulation over micro-batches
// through the model's layer list, global-norm clipping, the learning-rate
// schedule and the AdaFactor update; and evaluation. `baton train` runs
// PipelineTrainer (any number of stages and replicas); this plain loop is the
// reference the pipeline is tested against, bitwise.
#pragma once

#include <vector>

#include "layers/layer.h"
#include "pipeline/chunk_runner.h"
#include "layers/model.h"
#include "optim/adafactor.h"
#include "optim/lr_schedule.h"
#include "runtime/status.h"

namespace baton {

struct TrainerOptions {
  LrScheduleOptions lr;
  double clip_grad_norm = 0;  // 0 = off
  RecomputePolicy recompute = RecomputePolicy::kNone;
  // Where the layers compute: the CPU (the fp32 reference) or this process's GPU
  // (bf16 compute; fp32 master weights, gradients and optimizer state).
  Device device = Device::CPU();
};

// The activation dtype on a device: f32 on the CPU, bf16 on a GPU.
DType ComputeTypeFor(Device device);
// Refreshes every parameter's working copy from its master values (after an update or a load).
void RefreshComputeCopies(const std::vector<Param*>& params);

struct StepMetrics {
  int64_t step = 0;
  double loss = 0;        // mean loss per token over the step's micro-batches
  double lr = 0;          // the rate handed to AdaFactor
  double grad_norm = 0;   // global gradient norm before clipping
  int64_t tokens = 0;       // input tokens of the step (all replicas): throughput
  int64_t loss_targets = 0; // positions the loss counts (all replicas): its denominator
  double seconds = 0;
  // Bytes allocated on the compute device during the forward and backward passes
  // above what was allocated before them: activations and gradient temporaries.
  int64_t peak_activation_bytes = 0;
  // The compute device's memory at the end of the step: current bytes per category,
  // and peaks (total and per category) over the step.
  MemoryStats memory;
};

// The end of every training step, whatever runs the passes: refuses a non-finite
// loss or gradient norm (nothing is updated then), clips the gradients of `params`
// to the global norm in `m`, and returns the step's learning rate.
Result<double> FinishStepGradients(const StepMetrics& m, const TrainerOptions& options,
                                   const std::vector<Param*>& params);

class Trainer {
 public:
  Trainer(Model* model, Adafactor* optimizer, TrainerOptions options);

  // One optimizer step over `micro_batches` (their loss_scale is set here so that the
  // gradient is that of the mean loss over all their tokens). `step` is 1-based.
  // Fails (and leaves the weights untouched) when the gradient norm is not finite.
  Result<StepMetrics> Step(int64_t step, std::vector<MicroBatch> micro_batches);

  // Mean loss per token over `micro_batches`, forward only.
  double Evaluate(const std::vector<MicroBatch>& micro_batches) const;

 private:
  Model* model_;
  Adafactor* optimizer_;
  TrainerOptions options_;
  std::vector<Param*> params_;
  ChunkRunner runner_;
};

}  // namespace baton
