// The training step of one pipeline rank: its model chunks, their AdaFactor
// states, and the step around the schedule's actions (StageExecutor):
//   1. run the rank's action list over the step's micro-batches;
//   2. fold the tied table's head share in and sum the table's gradient
//      between the first and last stage (both then hold emb + head);
//   3. the global gradient norm from every parameter's squared norm, added in
//      the model's parameter order whatever the layout;
//   4. clip, schedule the learning rate, AdaFactor-update every chunk.
// Every step is arithmetically the same for any number of stages, any
// schedule and any recompute policy, so losses and weights are bitwise
// identical to the single-process Trainer (tests/pipeline).
#pragma once

#include <memory>
#include <vector>

#include "layers/model.h"
#include "optim/adafactor.h"
#include "pipeline/chunk_runner.h"
#include "pipeline/schedule.h"
#include "pipeline/stage_executor.h"
#include "pipeline/stage_layout.h"
#include "pipeline/trainer.h"
#include "runtime/transport.h"

namespace baton {

class PipelineTrainer {
 public:
  // `pipe` is this replica's pipeline group: rank r holds stage r. The schedule must
  // have passed VerifySchedule.
  PipelineTrainer(const ModelSpec& spec, uint64_t seed, const StageLayout& layout, PipelineSchedule schedule,
                  const AdafactorOptions& adafactor, TrainerOptions options, Transport* pipe);

  // One optimizer step; every pipeline rank calls it with the same micro-batches.
  // Metrics (loss, norm) are the global ones, the same on every rank.
  Result<StepMetrics> Step(int64_t step, std::vector<MicroBatch> micro_batches);
  // Mean loss per token over `micro_batches`, forward only; the same on every rank.
  Result<double> Evaluate(const std::vector<MicroBatch>& micro_batches);

  // This rank's parameters, chunk by chunk (a tied table held twice appears twice).
  std::vector<Param*> params() const;
  const std::vector<Model>& chunk_models() const { return models_; }
  int64_t OptimizerStateBytes() const;

 private:
  Status SumTiedTableGradient();
  Result<double> GlobalSquaredGradNorm();
  Param* EmbeddingTable() const;  // this rank's copy at global chunk 0, or null
  Param* HeadTable() const;       // this rank's copy at the last global chunk, or null

  ModelSpec spec_;
  StageLayout layout_;
  PipelineSchedule schedule_;
  TrainerOptions options_;
  Transport* pipe_;
  int rank_;
  std::vector<Model> models_;  // one per local chunk
  std::vector<std::unique_ptr<ChunkRunner>> runners_;
  std::vector<std::unique_ptr<Adafactor>> optimizers_;
  std::unique_ptr<StageExecutor> executor_;
};

}  // namespace baton
