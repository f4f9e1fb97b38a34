// A model family built as an ordered list of layers:
//   [embedding, blocks.0, ..., blocks.{L-1}, head]
// Build() can build any contiguous range of that list, which is what a
// pipeline stage holds. The token embedding is tied between the embedding and
// the head: one shared Param when both are in the range, otherwise each end
// holds its own copy with identical initial values (the pipeline sums their
// gradients so that the copies stay equal).
#pragma once

#include <memory>
#include <vector>

#include "layers/layer.h"
#include "layers/model_spec.h"

namespace baton {

class Model {
 public:
  // Layers [first, last) of the list; last = -1 means to the end. Weights are drawn from
  // the counter-based RNG keyed by parameter name, so they do not depend on the range.
  static Model Build(const ModelSpec& spec, uint64_t seed, DType dtype = DType::kF32, Device device = Device::CPU(),
                     int64_t first = 0, int64_t last = -1);

  const ModelSpec& spec() const { return spec_; }
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  // Every parameter once (a tied parameter is listed once), in list order.
  std::vector<Param*> params() const;
  Param* FindParam(const std::string& name) const;
  // Adds the loss head's share of the tied table's gradient into the table's Param
  // grad and clears it (see loss_head.h). Call after the step's backward passes,
  // before the gradient is read; a no-op when this range has no head.
  void FoldTiedGradients() const;

 private:
  ModelSpec spec_;
  std::vector<std::unique_ptr<Layer>> layers_;
};

}  // namespace baton
