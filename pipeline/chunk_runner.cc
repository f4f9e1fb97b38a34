#include "pipeline/chunk_runner.h"

namespace baton {

const char* RecomputePolicyName(RecomputePolicy policy) {
  switch (policy) {
    case RecomputePolicy::kNone: return "none";
    case RecomputePolicy::kSelective: return "selective";
    case RecomputePolicy::kFull: return "full";
  }
  return "?";
}

ChunkRunner::ChunkRunner(std::vector<Layer*> layers, RecomputePolicy policy)
    : layers_(std::move(layers)), policy_(policy) {
  for (Layer* layer : layers_) layer->SetSelectiveRecompute(policy == RecomputePolicy::kSelective);
}

Tensor ChunkRunner::Forward(int id, const MicroBatch& mb, const Tensor& x) {
  BATON_CHECK(!inflight_.count(id), "micro-batch " << id << " is already in flight");
  InFlight& f = inflight_[id];
  f.saved.resize(layers_.size());
  if (policy_ == RecomputePolicy::kFull) f.inputs.resize(layers_.size());
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const bool keep = policy_ != RecomputePolicy::kFull || layers_[i]->computes_loss();
    if (!keep) f.inputs[i] = h;
    h = layers_[i]->Forward(mb, h, keep ? &f.saved[i] : nullptr);
  }
  return h;
}

Tensor ChunkRunner::RunBackward(int id, const MicroBatch& mb, const Tensor& grad_out, bool with_weights,
                                const LayerDone& done) {
  auto it = inflight_.find(id);
  BATON_CHECK(it != inflight_.end(), "backward of micro-batch " << id << " before its forward");
  InFlight& f = it->second;
  Tensor g = grad_out;
  for (size_t i = layers_.size(); i-- > 0;) {
    if (!f.saved[i]) {  // full recompute: re-run this layer's forward from its kept input
      layers_[i]->Forward(mb, f.inputs[i], &f.saved[i]);
      f.inputs[i] = Tensor();
    }
    g = layers_[i]->BackwardInput(mb, g, f.saved[i].get());
    if (with_weights) {
      layers_[i]->BackwardWeight(mb, f.saved[i].get());
      f.saved[i].reset();
      if (done) done(i);
    }
  }
  if (with_weights) inflight_.erase(it);
  return g;
}

Tensor ChunkRunner::BackwardInput(int id, const MicroBatch& mb, const Tensor& grad_out) {
  return RunBackward(id, mb, grad_out, false, nullptr);
}

Tensor ChunkRunner::Backward(int id, const MicroBatch& mb, const Tensor& grad_out, const LayerDone& done) {
  return RunBackward(id, mb, grad_out, true, done);
}

Tensor ChunkRunner::Evaluate(const MicroBatch& mb, const Tensor& x) const {
  Tensor h = x;
  for (Layer* layer : layers_) h = layer->Forward(mb, h, nullptr);
  return h;
}

void ChunkRunner::BackwardWeight(int id, const MicroBatch& mb, const LayerDone& done) {
  auto it = inflight_.find(id);
  BATON_CHECK(it != inflight_.end(), "weight gradient of micro-batch " << id << " before its forward");
  for (size_t i = layers_.size(); i-- > 0;) {
    layers_[i]->BackwardWeight(mb, it->second.saved[i].get());
    if (done) done(i);
  }
  inflight_.erase(it);
}

}  // namespace baton
