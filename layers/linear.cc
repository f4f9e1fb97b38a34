#include "layers/linear.h"

#include "layers/ops.h"

namespace baton {

Linear::Linear(const std::string& name, int64_t in, int64_t out, bool bias, DType dtype, Device device)
    : weight_(std::make_unique<Param>(name + ".weight", Shape{out, in}, dtype, device)) {
  if (bias) bias_ = std::make_unique<Param>(name + ".bias", Shape{out}, dtype, device);
}

Tensor Linear::Forward(const Tensor& x) const {
  const Tensor& w = weight_->compute;
  Tensor y = Tensor::Empty({x.numel() / w.dim(1), w.dim(0)}, x.dtype(), x.device());
  ops::LinearForward(x, w, bias_ ? bias_->compute : Tensor(), &y);
  return y;
}

Tensor Linear::BackwardInput(const Tensor& dy) const {
  const Tensor& w = weight_->compute;
  Tensor dx = Tensor::Empty({dy.numel() / w.dim(0), w.dim(1)}, dy.dtype(), dy.device());
  ops::Matmul(dy, false, w, false, &dx);
  return dx;
}

Tensor Linear::BackwardInputGelu(const Tensor& dy, const Tensor& f) const {
  Tensor d_f = Tensor::Empty(f.shape(), f.dtype(), f.device());
  ops::LinearBackwardInputGelu(dy, weight_->compute, f, &d_f);
  return d_f;
}

void Linear::BackwardWeight(const Tensor& x, const Tensor& dy) {
  ops::Matmul(dy, true, x, false, &weight_->grad, 1.0, 1.0);
  if (bias_) ops::BiasGrad(dy, &bias_->grad);
}

void Linear::AppendParams(std::vector<Param*>* out) {
  out->push_back(weight_.get());
  if (bias_) out->push_back(bias_.get());
}

}  // namespace baton
