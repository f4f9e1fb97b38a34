// A model is an ordered list of Layers; the pipeline cuts the list into
// stages. A Layer runs one micro-batch at a time and keeps nothing per
// micro-batch itself: what backward needs goes into a LayerActivations object
// the caller owns, so any number of micro-batches can be in flight and the
// caller decides what to keep, drop or recompute.
//
// Backward is split in two halves, as zero-bubble schedules need: the input
// gradient (B), which the previous stage waits for, and the weight gradients
// (W), which can run later.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/micro_batch.h"
#include "layers/param.h"
#include "runtime/tensor.h"

namespace baton {

// What a layer saved during Forward for its backward halves.
class LayerActivations {
 public:
  virtual ~LayerActivations() = default;
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual const std::string& name() const = 0;
  // Parameters this layer updates through (a tied parameter appears in every layer using it).
  virtual std::vector<Param*> params() = 0;

  // Forward of one micro-batch. `x` is the previous layer's output ([batch*seq, hidden]);
  // the first layer ignores it. With `saved` non-null the layer fills it for backward
  // (training); with nullptr it keeps nothing (evaluation).
  virtual Tensor Forward(const MicroBatch& mb, const Tensor& x, std::unique_ptr<LayerActivations>* saved) = 0;
  // B: returns d(objective)/dx (undefined for the first layer). The loss layer ignores
  // grad_out: the objective starts there.
  virtual Tensor BackwardInput(const MicroBatch& mb, const Tensor& grad_out, LayerActivations* saved) = 0;
  // W: accumulates parameter gradients; call after BackwardInput with the same `saved`.
  virtual void BackwardWeight(const MicroBatch& mb, LayerActivations* saved) = 0;

  // Selective recomputation: when on, Forward keeps only what is expensive to
  // recompute and the backward halves recompute the rest (for a transformer
  // block: the GELU output; attention never keeps its probabilities). Results
  // are bitwise the same either way. Layers with nothing worth dropping ignore it.
  virtual void SetSelectiveRecompute(bool on) {}

  // True for the layer that ends the list and computes the loss: its training
  // Forward must run exactly once per micro-batch (see loss_head.h), so it is
  // never recomputed.
  virtual bool computes_loss() const { return false; }
};

}  // namespace baton
