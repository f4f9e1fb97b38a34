// Normalisation over the hidden dimension: LayerNorm (gain and bias) or
// RMSNorm (gain, or parameter-free as in RoFormerV2).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/param.h"

namespace baton {

enum class NormKind { kLayerNorm, kRmsNorm, kRmsNormNoGain };

class Norm {
 public:
  struct Saved {
    Tensor x, mean, rstd;
  };

  Norm(const std::string& name, int64_t dim, NormKind kind, double eps, DType dtype, Device device);

  // With `saved` non-null, keeps what Backward needs.
  Tensor Forward(const Tensor& x, Saved* saved) const;
  // *sum = a + b (a residual add; *sum may be a or b), then Forward(*sum), fused.
  Tensor ForwardAdd(const Tensor& a, const Tensor& b, Tensor* sum, Saved* saved) const;
  // Returns dx (plus *residual when given: a residual stream's gradient, added in the same
  // pass); accumulates gain/bias gradients.
  Tensor Backward(const Tensor& dy, const Saved& saved, const Tensor* residual = nullptr);

  Param* gain() { return gain_.get(); }
  Param* bias() { return bias_.get(); }
  void AppendParams(std::vector<Param*>* out);

 private:
  NormKind kind_;
  double eps_;
  std::unique_ptr<Param> gain_, bias_;
};

}  // namespace baton
