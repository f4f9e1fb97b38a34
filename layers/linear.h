// y = x W^T + b with W stored [out, in] (the PyTorch layout).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/param.h"

namespace baton {

class Linear {
 public:
  Linear(const std::string& name, int64_t in, int64_t out, bool bias, DType dtype, Device device);

  Tensor Forward(const Tensor& x) const;           // [rows, in] -> [rows, out]
  Tensor BackwardInput(const Tensor& dy) const;    // dx = dy W
  // For a layer whose input was gelu(f): d_f = (dy W) * gelu'(f), fused (ops::LinearBackwardInputGelu).
  Tensor BackwardInputGelu(const Tensor& dy, const Tensor& f) const;
  void BackwardWeight(const Tensor& x, const Tensor& dy);  // dW += dy^T x, db += sum_rows dy

  Param& weight() { return *weight_; }
  Param* bias() { return bias_.get(); }
  void AppendParams(std::vector<Param*>* out);

 private:
  std::unique_ptr<Param> weight_, bias_;
};

}  // namespace baton
