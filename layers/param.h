// A trainable parameter as the optimizer and checkpoints see it: a stable
// name, its master values, the gradient that backward accumulates into, and
// the working copy the layers compute with.
//
// Mixed precision: on the GPU the master values and the gradient are fp32
// and the layers compute with a bf16 copy; on the CPU all three types agree
// and the working copy is the master tensor itself. Whoever changes `value`
// (the optimizer, a checkpoint load, initialisation) calls RefreshCompute().
#pragma once

#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace baton {

struct Param {
  std::string name;  // stable and topology-independent, e.g. "blocks.3.attn.qkv.weight"
  Tensor value;      // master values: what the optimizer updates and checkpoints store
  Tensor grad;       // same shape and dtype as value; zeroed by the trainer each step
  Tensor compute;    // what layers read: `value` itself, or its copy in the compute dtype

  // Master, gradient and working copy all of v's dtype (compute aliases value).
  Param(std::string n, Tensor v);
  // Zero master of the accumulation type of `compute_dtype` (f32, or f64 for f64)
  // and a working copy in `compute_dtype`, on `device`.
  Param(std::string n, const Shape& shape, DType compute_dtype, Device device);

  bool has_separate_compute() const { return compute.raw() != value.raw() || compute.dtype() != value.dtype(); }
  // Brings the working copy up to date with `value` (a no-op when they are one tensor).
  void RefreshCompute();
};

}  // namespace baton
