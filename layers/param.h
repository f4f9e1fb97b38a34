// A trainable parameter as the optimizer and checkpoints see it: a stable
// name, its values and the gradient that backward accumulates into.
#pragma once

#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace baton {

struct Param {
  std::string name;  // stable and topology-independent, e.g. "blocks.3.attn.qkv.weight"
  Tensor value;
  Tensor grad;       // same shape and dtype as value; zeroed by the trainer each step

  Param(std::string n, Tensor v) : name(std::move(n)), value(std::move(v)) {
    grad = Tensor::Zeros(value.shape(), value.dtype(), value.device());
  }
};

}  // namespace baton
