#include "pipeline/pipeline_trainer.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "layers/ops.h"
#include "optim/grad_clip.h"
#include "runtime/op_profile.h"
#include "runtime/timer.h"

namespace baton {

PipelineTrainer::PipelineTrainer(const ModelSpec& spec, uint64_t seed, const StageLayout& layout,
                                 PipelineSchedule schedule, const AdafactorOptions& adafactor, TrainerOptions options,
                                 Transport* pipe, Transport* replicas)
    : spec_(spec), layout_(layout), schedule_(std::move(schedule)), options_(options), pipe_(pipe),
      replicas_(replicas), num_replicas_(replicas ? replicas->size() : 1), rank_(pipe->rank()) {
  BATON_CHECK(pipe->size() == layout.stages && schedule_.stages == layout.stages &&
                  schedule_.virtual_stages == layout.virtual_stages,
              "pipeline group of " << pipe->size() << ", layout " << layout.stages << "x" << layout.virtual_stages
                                   << ", schedule " << schedule_.stages << "x" << schedule_.virtual_stages);
  std::vector<ChunkRunner*> runners;
  for (int v = 0; v < layout.virtual_stages; ++v) {
    auto [first, last] = layout.chunks[layout.global_chunk(rank_, v)];
    models_.push_back(Model::Build(spec, seed, ComputeTypeFor(options.device), options.device, first, last));
  }
  for (Model& m : models_) {
    std::vector<Layer*> layers;
    for (const auto& l : m.layers()) layers.push_back(l.get());
    runners_.push_back(std::make_unique<ChunkRunner>(layers, options.recompute));
    runners.push_back(runners_.back().get());
    MemoryScope scope(MemoryCategory::kOptimizer);
    optimizers_.push_back(std::make_unique<ShardedAdafactor>(adafactor, m.params(), replicas));
  }
  executor_ = std::make_unique<StageExecutor>(&schedule_, rank_, runners, pipe, spec.hidden,
                                              ComputeTypeFor(options.device), options.device);
  if (num_replicas_ > 1) {
    for (size_t v = 0; v < models_.size(); ++v) {
      std::map<const Param*, size_t> index;
      const std::vector<Param*>& ps = optimizers_[v]->params();
      for (size_t i = 0; i < ps.size(); ++i) index[ps[i]] = i;
      std::vector<std::vector<size_t>> layers;
      for (const auto& layer : models_[v].layers()) {
        layers.emplace_back();
        for (Param* p : layer->params())
          if (p->name != "wte") layers.back().push_back(index.at(p));  // the tied table: after SumTiedTableGradient
      }
      layer_params_.push_back(std::move(layers));
    }
    executor_->set_gradients_ready([this](int chunk, size_t layer) { PostLayerGradients(chunk, layer); });
  }
}

void PipelineTrainer::PostLayerGradients(int chunk, size_t layer) {
  if (!post_status_.ok()) return;
  post_status_ = optimizers_[static_cast<size_t>(chunk)]->PostGradients(layer_params_[static_cast<size_t>(chunk)][layer]);
}

std::vector<Param*> PipelineTrainer::params() const {
  std::vector<Param*> out;
  for (const Model& m : models_)
    for (Param* p : m.params()) out.push_back(p);
  return out;
}

int64_t PipelineTrainer::OptimizerStateBytes() const {
  int64_t total = 0;
  for (const auto& o : optimizers_) total += o->StateBytes();
  return total;
}

Param* PipelineTrainer::EmbeddingTable() const {
  return rank_ == layout_.rank_of_chunk(0) ? models_.front().FindParam("wte") : nullptr;
}

Param* PipelineTrainer::HeadTable() const {
  return rank_ == layout_.rank_of_chunk(layout_.num_chunks() - 1) ? models_.back().FindParam("wte") : nullptr;
}

Status PipelineTrainer::SumTiedTableGradient() {
  for (const Model& m : models_) m.FoldTiedGradients();
  Param* emb = EmbeddingTable();
  Param* head = HeadTable();
  if (emb && emb == head) return Status::OK();  // one model holds both ends: one Param
  if (emb && head) {                              // two chunks of this rank
    ops::Axpy(1.0, head->grad, &emb->grad);
    head->grad.CopyFrom(emb->grad);
    return Status::OK();
  }
  Param* mine = emb ? emb : head;
  if (!mine) return Status::OK();
  // emb + head on both ends: IEEE addition commutes, so both get the same bits.
  const int peer = emb ? layout_.rank_of_chunk(layout_.num_chunks() - 1) : layout_.rank_of_chunk(0);
  Tensor theirs = Tensor::Empty(mine->grad.shape(), mine->grad.dtype(), mine->grad.device());
  BATON_RETURN_IF_ERROR(pipe_->Exchange({P2POp::Send(peer, 0, mine->grad), P2POp::Recv(peer, 0, theirs)}));
  ops::Axpy(1.0, theirs, &mine->grad);
  return Status::OK();
}

Result<double> PipelineTrainer::GlobalSquaredGradNorm() {
  // Every rank contributes (global chunk, index, squared norm) per parameter; all
  // ranks then add them in the model's order. The head's copy of the tied table
  // is the same gradient as the embedding's and counts once. With replicas only
  // the owner holds a parameter's summed gradient: the others contribute 0 and the
  // sum over replicas (x + 0 + ... is exact) gives every replica the same norms.
  std::vector<double> entries;
  for (int v = 0; v < layout_.virtual_stages; ++v) {
    std::vector<Param*> ps;
    std::vector<bool> owned;
    const std::vector<Param*>& all = optimizers_[v]->params();
    for (size_t i = 0; i < all.size(); ++i) {
      if (IsSecondTableCopy(all[i])) continue;
      ps.push_back(all[i]);
      owned.push_back(optimizers_[v]->owns(i));
    }
    std::vector<double> norms = SquaredGradNorms(ps);
    if (num_replicas_ > 1) {
      for (size_t i = 0; i < norms.size(); ++i)
        if (!owned[i]) norms[i] = 0;
      BATON_RETURN_IF_ERROR(replicas_->AllReduceSum(&norms));
    }
    for (size_t i = 0; i < norms.size(); ++i)
      entries.insert(entries.end(), {static_cast<double>(layout_.global_chunk(rank_, v)), static_cast<double>(i), norms[i]});
  }
  std::vector<double> counts(static_cast<size_t>(pipe_->size()), 0.0);
  counts[rank_] = static_cast<double>(entries.size() / 3);
  BATON_RETURN_IF_ERROR(pipe_->AllReduceSum(&counts));
  const int64_t most = static_cast<int64_t>(*std::max_element(counts.begin(), counts.end()));
  Tensor mine = Tensor::Empty({most, 3}, DType::kF64);
  std::fill(mine.data<double>(), mine.data<double>() + mine.numel(), -1.0);
  std::copy(entries.begin(), entries.end(), mine.data<double>());
  Tensor all;
  BATON_RETURN_IF_ERROR(pipe_->AllGather(mine, &all));
  double total = 0;
  for (int c = 0; c < layout_.num_chunks(); ++c) {
    const double* block = all.data<double>() + layout_.rank_of_chunk(c) * most * 3;
    for (int64_t i = 0; i < most; ++i)
      if (block[3 * i] == c) total += block[3 * i + 2];  // entries of a chunk are in parameter order
  }
  return total;
}

Result<StepMetrics> PipelineTrainer::Step(int64_t step, std::vector<MicroBatch> micro_batches) {
  Timer timer;
  // The loss is the mean over every replica's targets; replicas can hold different
  // numbers of them (masked LM, padding), so the count is summed across replicas.
  std::vector<double> counts{0, 0};  // input tokens, loss targets
  for (const MicroBatch& mb : micro_batches) {
    counts[0] += static_cast<double>(mb.tokens.numel());
    counts[1] += static_cast<double>(mb.LossTargets());
  }
  if (replicas_) BATON_RETURN_IF_ERROR(replicas_->AllReduceSum(&counts));
  const int64_t tokens = static_cast<int64_t>(counts[0]), targets = static_cast<int64_t>(counts[1]);
  if (targets == 0) return Status::InvalidArgument("step " + std::to_string(step) + ": no position has a target");
  for (MicroBatch& mb : micro_batches) {
    mb = mb.To(options_.device);
    mb.loss_scale = 1.0 / static_cast<double>(targets);
  }
  const std::vector<Param*> all = params();
  for (Param* p : all) p->grad.SetZero();

  Allocator& memory = AllocatorFor(options_.device);
  const int64_t bytes_before = memory.Stats().current_bytes;
  memory.ResetPeak();
  double loss_sum = 0;
  {
    MemoryScope scope(MemoryCategory::kActivations);
    OpProfile::Scope phase("phase: forward and backward");
    BATON_ASSIGN_OR_RETURN(loss_sum, executor_->RunStep(micro_batches));
    BATON_RETURN_IF_ERROR(post_status_);
  }
  const int64_t activation_peak = memory.Stats().peak_bytes - bytes_before;  // forward and backward only
  {
    OpProfile::Scope phase("phase: gradient reduction");
    BATON_RETURN_IF_ERROR(SumTiedTableGradient());
    for (auto& o : optimizers_) BATON_RETURN_IF_ERROR(o->ReduceGradients());
  }

  StepMetrics m;
  m.step = step;
  m.tokens = tokens;
  m.loss_targets = targets;
  m.peak_activation_bytes = activation_peak;
  std::vector<double> loss{loss_sum};
  BATON_RETURN_IF_ERROR(pipe_->AllReduceSum(&loss));
  if (replicas_) BATON_RETURN_IF_ERROR(replicas_->AllReduceSum(&loss));
  m.loss = loss[0] / static_cast<double>(targets);
  {
    OpProfile::Scope phase("phase: gradient norm and clipping");
    BATON_ASSIGN_OR_RETURN(double squared_norm, GlobalSquaredGradNorm());
    m.grad_norm = std::sqrt(squared_norm);
    BATON_ASSIGN_OR_RETURN(m.lr, FinishStepGradients(m, options_, all));
  }
  {
    OpProfile::Scope phase("phase: optimizer");
    for (auto& o : optimizers_) BATON_RETURN_IF_ERROR(o->Step(step, m.lr));
  }
  {
    OpProfile::Scope phase("phase: bf16 weight copies");
    RefreshComputeCopies(all);
  }
  m.memory = memory.Stats();
  SynchronizeDevice(options_.device);  // the step's time includes the device's work
  m.seconds = timer.Seconds();
  return m;
}

Result<double> PipelineTrainer::Evaluate(const std::vector<MicroBatch>& micro_batches) {
  // Micro-batch by micro-batch along the chain of chunks, no pipelining: evaluation is rare.
  double loss_sum = 0;
  int64_t targets = 0;
  const int chunks = layout_.num_chunks();
  const int replica = replicas_ ? replicas_->rank() : 0;
  for (size_t i = 0; i < micro_batches.size(); ++i) {
    targets += micro_batches[i].LossTargets();
    if (static_cast<int>(i % num_replicas_) != replica) continue;  // replicas split the batches
    const MicroBatch mb = micro_batches[i].To(options_.device);
    Tensor x;
    for (int c = 0; c < chunks; ++c) {
      const int owner = layout_.rank_of_chunk(c);
      const int prev_owner = c > 0 ? layout_.rank_of_chunk(c - 1) : owner;
      if (owner == rank_ && prev_owner != rank_) {
        x = Tensor::Empty({mb.tokens.numel(), spec_.hidden}, ComputeTypeFor(options_.device), options_.device);
        BATON_RETURN_IF_ERROR(pipe_->Exchange({P2POp::Recv(prev_owner, 1, x)}));
      }
      if (owner == rank_) x = runners_[c / layout_.stages]->Evaluate(mb, x);
      if (owner == rank_ && c + 1 < chunks && layout_.rank_of_chunk(c + 1) != rank_)
        BATON_RETURN_IF_ERROR(pipe_->Exchange({P2POp::Send(layout_.rank_of_chunk(c + 1), 1, x)}));
      if (owner == rank_ && c + 1 == chunks) loss_sum += x.data<double>()[0];
    }
  }
  std::vector<double> loss{loss_sum};
  BATON_RETURN_IF_ERROR(pipe_->AllReduceSum(&loss));
  if (replicas_) BATON_RETURN_IF_ERROR(replicas_->AllReduceSum(&loss));
  return targets ? loss[0] / static_cast<double>(targets) : 0.0;
}

}  // namespace baton
