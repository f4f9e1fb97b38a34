// The training step of one pipeline rank: its model chunks, their AdaFactor
// states, and the step around the schedule's actions (StageExecutor):
//   1. run the rank's action list over the step's micro-batches;
//   2. fold the tied table's head share in and sum the table's gradient
//      between the first and last stage (both then hold emb + head);
//   3. the global gradient norm from every parameter's squared norm, added in
//      the model's parameter order whatever the layout;
//   4. with data-parallel replicas: each gradient goes to the replica that
//      owns the tensor, which sums the replicas' copies (ShardedAdafactor);
//      a layer's gradients leave as soon as its last backward is done,
//      overlapping the backward of the layers before it (the tied table waits
//      for step 2); each owner updates its tensors and broadcasts them;
//   5. clip, schedule the learning rate, AdaFactor-update every chunk.
// Every step is arithmetically the same for any number of stages, any
// schedule and any recompute policy, so losses and weights are bitwise
// identical to the single-process Trainer (tests/pipeline); with replicas the
// gradient sums run in another order, so agreement is to rounding.
#pragma once

#include <memory>
#include <vector>

#include "layers/model.h"
#include "optim/adafactor.h"
#include "optim/sharded_adafactor.h"
#include "pipeline/chunk_runner.h"
#include "pipeline/schedule.h"
#include "pipeline/stage_executor.h"
#include "pipeline/stage_layout.h"
#include "pipeline/trainer.h"
#include "runtime/transport.h"

namespace baton {

class PipelineTrainer {
 public:
  // `pipe` is this replica's pipeline group: rank r holds stage r. `replicas` is the
  // group of this stage's data-parallel replicas (null or size 1: none). The schedule
  // must have passed VerifySchedule.
  PipelineTrainer(const ModelSpec& spec, uint64_t seed, const StageLayout& layout, PipelineSchedule schedule,
                  const AdafactorOptions& adafactor, TrainerOptions options, Transport* pipe,
                  Transport* replicas = nullptr);

  // One optimizer step; every rank of a replica calls it with that replica's
  // micro-batches (all of the same size). Metrics (loss, norm) are the global ones,
  // the same on every rank.
  Result<StepMetrics> Step(int64_t step, std::vector<MicroBatch> micro_batches);
  // Mean loss per token over `micro_batches` (the whole evaluation set, the same on every
  // rank; replicas split it), forward only; the result is the same on every rank.
  Result<double> Evaluate(const std::vector<MicroBatch>& micro_batches);

  // This rank's parameters, chunk by chunk (a tied table held twice appears twice).
  std::vector<Param*> params() const;
  const std::vector<Model>& chunk_models() const { return models_; }
  // The optimizer of local chunk v (its parameters, which of them this replica owns, their state).
  ShardedAdafactor& chunk_optimizer(int v) const { return *optimizers_[static_cast<size_t>(v)]; }
  // True for the last chunk's copy of the tied token table when the embedding's copy
  // is another Param (another chunk or rank): the same tensor, so checkpoints store it once.
  bool IsSecondTableCopy(const Param* p) const { return p && p == HeadTable() && p != EmbeddingTable(); }
  int64_t OptimizerStateBytes() const;

 private:
  Status SumTiedTableGradient();
  Result<double> GlobalSquaredGradNorm();
  Param* EmbeddingTable() const;  // this rank's copy at global chunk 0, or null
  Param* HeadTable() const;       // this rank's copy at the last global chunk, or null

  // With replicas: the executor's callback when a layer's gradients are final.
  void PostLayerGradients(int chunk, size_t layer);

  ModelSpec spec_;
  StageLayout layout_;
  PipelineSchedule schedule_;
  TrainerOptions options_;
  Transport* pipe_;
  Transport* replicas_;
  int num_replicas_;
  int rank_;
  std::vector<Model> models_;  // one per local chunk
  std::vector<std::unique_ptr<ChunkRunner>> runners_;
  std::vector<std::unique_ptr<ShardedAdafactor>> optimizers_;  // one per local chunk
  std::unique_ptr<StageExecutor> executor_;
  // layer_params_[v][l]: indices into chunk v's optimizer params of layer l's parameters
  // (without the tied table), posted for reduction when the layer is done.
  std::vector<std::vector<std::vector<size_t>>> layer_params_;
  Status post_status_;  // the first failure of a posting during the step
};

}  // namespace baton
