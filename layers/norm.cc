#include "layers/norm.h"

#include "layers/ops.h"

namespace baton {

Norm::Norm(const std::string& name, int64_t dim, NormKind kind, double eps, DType dtype, Device device)
    : kind_(kind), eps_(eps) {
  if (kind != NormKind::kRmsNormNoGain) gain_ = std::make_unique<Param>(name + ".weight", Tensor::Zeros({dim}, dtype, device));
  if (kind == NormKind::kLayerNorm) bias_ = std::make_unique<Param>(name + ".bias", Tensor::Zeros({dim}, dtype, device));
}

Tensor Norm::Forward(const Tensor& x, Saved* saved) const {
  const int64_t rows = x.numel() / x.dim(-1);
  Tensor y = Tensor::Empty(x.shape(), x.dtype(), x.device());
  Tensor mean = kind_ == NormKind::kLayerNorm ? Tensor::Empty({rows}, x.dtype(), x.device()) : Tensor();
  Tensor rstd = Tensor::Empty({rows}, x.dtype(), x.device());
  if (kind_ == NormKind::kLayerNorm) {
    ops::LayerNormForward(x, gain_->value, bias_->value, eps_, &y, &mean, &rstd);
  } else {
    ops::RmsNormForward(x, gain_ ? gain_->value : Tensor(), eps_, &y, &rstd);
  }
  if (saved) *saved = Saved{x, mean, rstd};
  return y;
}

Tensor Norm::Backward(const Tensor& dy, const Saved& s) {
  Tensor dx = Tensor::Empty(s.x.shape(), s.x.dtype(), s.x.device());
  if (kind_ == NormKind::kLayerNorm) {
    ops::LayerNormBackward(dy, s.x, gain_->value, s.mean, s.rstd, &dx, &gain_->grad, &bias_->grad);
  } else {
    ops::RmsNormBackward(dy, s.x, gain_ ? gain_->value : Tensor(), s.rstd, &dx, gain_ ? &gain_->grad : nullptr);
  }
  return dx;
}

void Norm::AppendParams(std::vector<Param*>* out) {
  if (gain_) out->push_back(gain_.get());
  if (bias_) out->push_back(bias_.get());
}

}  // namespace baton
