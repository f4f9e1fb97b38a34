#include "optim/grad_clip.h"

#include <cmath>

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

std::vector<double> SquaredGradNorms(const std::vector<Param*>& params) {
  std::vector<double> out;
  out.reserve(params.size());
  for (const Param* p : params) {
    CheckGrad(p);
    out.push_back(p->grad.dtype() == DType::kF64 ? SumSquares<double>(p->grad) : SumSquares<float>(p->grad));
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
    if (p->grad.dtype() == DType::kF64) Scale<double>(p->grad, factor);
    else Scale<float>(p->grad, factor);
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
