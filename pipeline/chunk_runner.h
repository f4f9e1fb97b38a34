// Forward and backward of micro-batches through one model chunk (a contiguous
// run of the layer list: a pipeline stage, or one of its virtual chunks),
// keeping each in-flight micro-batch's activations as the recompute policy
// says:
//   none       every layer keeps what its backward needs
//   selective  blocks drop the GELU output and recompute it in backward
//              (Layer::SetSelectiveRecompute); attention is fused and keeps
//              only its log-sum-exp under every policy
//   full       only each layer's input is kept; backward re-runs the layer's
//              forward first (the loss layer is never re-run: loss_head.h)
// All three give bitwise-identical gradients. With B and W split (zero-bubble
// schedules), full recompute re-runs a layer's forward in B and keeps its
// internals until W, so it saves little over selective there.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "layers/layer.h"

namespace baton {

enum class RecomputePolicy { kNone, kSelective, kFull };

const char* RecomputePolicyName(RecomputePolicy policy);

class ChunkRunner {
 public:
  // Called with a layer's index right after its weight gradients of the micro-batch were
  // computed (on the compute stream), last layer first: data parallelism starts reducing a
  // layer's gradients after its last micro-batch while earlier layers still run backward.
  using LayerDone = std::function<void(size_t layer)>;

  ChunkRunner(std::vector<Layer*> layers, RecomputePolicy policy);

  // F: runs micro-batch `id` through the chunk. `x` is the chunk's input (ignored by a
  // chunk that starts with the embedding). For the chunk that ends with the loss the
  // result is a one-element f64 tensor: the sum of the micro-batch's token losses.
  Tensor Forward(int id, const MicroBatch& mb, const Tensor& x);
  // B: d(objective)/d(chunk input); undefined for the chunk that starts with the embedding.
  // The loss chunk ignores grad_out.
  Tensor BackwardInput(int id, const MicroBatch& mb, const Tensor& grad_out);
  // W: parameter gradients of micro-batch `id`; releases its activations.
  void BackwardWeight(int id, const MicroBatch& mb, const LayerDone& done = nullptr);
  // B and W fused, layer by layer, releasing each layer's activations as soon as it is done
  // (under full recompute only one layer's internals exist at a time).
  Tensor Backward(int id, const MicroBatch& mb, const Tensor& grad_out, const LayerDone& done = nullptr);

  // Forward only, keeping nothing (evaluation).
  Tensor Evaluate(const MicroBatch& mb, const Tensor& x) const;

  int inflight() const { return static_cast<int>(inflight_.size()); }
  const std::vector<Layer*>& layers() const { return layers_; }

 private:
  struct InFlight {
    std::vector<Tensor> inputs;                                 // full recompute: each layer's input
    std::vector<std::unique_ptr<LayerActivations>> saved;      // per layer
  };

  Tensor RunBackward(int id, const MicroBatch& mb, const Tensor& grad_out, bool with_weights, const LayerDone& done);

  std::vector<Layer*> layers_;
  RecomputePolicy policy_;
  std::map<int, InFlight> inflight_;
};

}  // namespace baton
