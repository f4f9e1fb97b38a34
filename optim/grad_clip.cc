#include "optim/grad_clip.h"

#include <cmath>

#include "layers/ops.h"

namespace baton {
namespace {

template <typename T>
double SumSquares(const Tensor& t) {
  const T* p = t.data<T>();
  double s = 0;
  for (int64_t i = 0, n = t.numel(); i < n; ++i) s += static_cast<double>(p[i]) * p[i];
  return s;
}

template <typename T>
void Scale(const Tensor& t, double factor) {
  T* p = t.data<T>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(p[i] * factor);
}

void CheckGrad(const Param* p) {
  BATON_CHECK(p != nullptr && p->grad.defined(), "parameter without a gradient");
  BATON_CHECK(p->grad.dtype() == DType::kF32 || p->grad.dtype() == DType::kF64,
              "gradient of " << p->name << " is " << DTypeName(p->grad.dtype()) << "; fp32 or fp64 expected");
}

}  // namespace

// Host gradients are summed here, in element order; device gradients by
// ops::SumsOfSquares, all of them in one call (one wait for the GPU), each in
// the fixed order of the device kernel.
std::vector<double> SquaredGradNorms(const std::vector<Param*>& params) {
  std::vector<double> out(params.size(), 0.0);
  std::vector<const Tensor*> device_grads;
  std::vector<size_t> device_index;
  for (size_t i = 0; i < params.size(); ++i) {
    const Param* p = params[i];
    CheckGrad(p);
    if (!p->grad.device().is_cpu()) {
      device_grads.push_back(&p->grad);
      device_index.push_back(i);
      continue;
    }
    out[i] = p->grad.dtype() == DType::kF64 ? SumSquares<double>(p->grad) : SumSquares<float>(p->grad);
  }
  if (!device_grads.empty()) {
    const std::vector<double> sums = ops::SumsOfSquares(device_grads);
    BATON_CHECK(sums.size() == device_grads.size(),
                "SumsOfSquares returned " << sums.size() << " sums for " << device_grads.size() << " tensors");
    for (size_t k = 0; k < sums.size(); ++k) out[device_index[k]] = sums[k];
  }
  return out;
}

double SquaredGradNorm(const std::vector<Param*>& params) {
  double total = 0;
  for (double s : SquaredGradNorms(params)) total += s;
  return total;
}

void ScaleGrads(const std::vector<Param*>& params, double factor) {
  for (const Param* p : params) {
    CheckGrad(p);
    if (!p->grad.device().is_cpu()) {
      Tensor grad = p->grad;  // shares the buffer
      ops::Scale(factor, &grad);
    } else if (p->grad.dtype() == DType::kF64) {
      Scale<double>(p->grad, factor);
    } else {
      Scale<float>(p->grad, factor);
    }
  }
}

double ClipFactor(double norm, double max_norm) {
  return max_norm > 0 && norm > max_norm ? max_norm / norm : 1.0;
}

double ClipGradNorm(const std::vector<Param*>& params, double max_norm) {
  const double norm = std::sqrt(SquaredGradNorm(params));
  const double factor = ClipFactor(norm, max_norm);
  if (factor != 1.0) ScaleGrads(params, factor);
  return norm;
}

}  // namespace baton
