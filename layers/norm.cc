#include "layers/norm.h"

#include "layers/ops.h"

namespace baton {

Norm::Norm(const std::string& name, int64_t dim, NormKind kind, double eps, DType dtype, Device device)
    : kind_(kind), eps_(eps) {
  if (kind != NormKind::kRmsNormNoGain) gain_ = std::make_unique<Param>(name + ".weight", Shape{dim}, dtype, device);
  if (kind == NormKind::kLayerNorm) bias_ = std::make_unique<Param>(name + ".bias", Shape{dim}, dtype, device);
}

Tensor Norm::Forward(const Tensor& x, Saved* saved) const {
  const int64_t rows = x.numel() / x.dim(-1);
  Tensor y = Tensor::Empty(x.shape(), x.dtype(), x.device());
  const DType stats = ops::AccumulationType(x.dtype());
  Tensor mean = kind_ == NormKind::kLayerNorm ? Tensor::Empty({rows}, stats, x.device()) : Tensor();
  Tensor rstd = Tensor::Empty({rows}, stats, x.device());
  if (kind_ == NormKind::kLayerNorm) {
    ops::LayerNormForward(x, gain_->compute, bias_->compute, eps_, &y, &mean, &rstd);
  } else {
    ops::RmsNormForward(x, gain_ ? gain_->compute : Tensor(), eps_, &y, &rstd);
  }
  if (saved) *saved = Saved{x, mean, rstd};
  return y;
}

Tensor Norm::ForwardAdd(const Tensor& a, const Tensor& b, Tensor* sum, Saved* saved) const {
  const int64_t rows = a.numel() / a.dim(-1);
  Tensor y = Tensor::Empty(a.shape(), a.dtype(), a.device());
  const DType stats = ops::AccumulationType(a.dtype());
  Tensor mean = kind_ == NormKind::kLayerNorm ? Tensor::Empty({rows}, stats, a.device()) : Tensor();
  Tensor rstd = Tensor::Empty({rows}, stats, a.device());
  if (kind_ == NormKind::kLayerNorm) {
    ops::AddLayerNormForward(a, b, gain_->compute, bias_->compute, eps_, sum, &y, &mean, &rstd);
  } else {
    ops::AddRmsNormForward(a, b, gain_ ? gain_->compute : Tensor(), eps_, sum, &y, &rstd);
  }
  if (saved) *saved = Saved{*sum, mean, rstd};
  return y;
}

Tensor Norm::Backward(const Tensor& dy, const Saved& s, const Tensor* residual) {
  Tensor dx = Tensor::Empty(s.x.shape(), s.x.dtype(), s.x.device());
  if (kind_ == NormKind::kLayerNorm) {
    if (residual) {
      ops::LayerNormBackwardAdd(dy, s.x, gain_->compute, s.mean, s.rstd, *residual, &dx, &gain_->grad, &bias_->grad);
    } else {
      ops::LayerNormBackward(dy, s.x, gain_->compute, s.mean, s.rstd, &dx, &gain_->grad, &bias_->grad);
    }
  } else {
    const Tensor gain = gain_ ? gain_->compute : Tensor();
    Tensor* grad_gain = gain_ ? &gain_->grad : nullptr;
    if (residual) {
      ops::RmsNormBackwardAdd(dy, s.x, gain, s.rstd, *residual, &dx, grad_gain);
    } else {
      ops::RmsNormBackward(dy, s.x, gain, s.rstd, &dx, grad_gain);
    }
  }
  return dx;
}

void Norm::AppendParams(std::vector<Param*>* out) {
  if (gain_) out->push_back(gain_.get());
  if (bias_) out->push_back(bias_.get());
}

}  // namespace baton
