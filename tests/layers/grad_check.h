// Finite-difference gradient checks in float64 for layers and ops.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "runtime/rng.h"
#include "runtime/tensor.h"

namespace baton::testing {

// A float64 tensor of N(0, scale) values drawn from a fresh stream.
inline Tensor RandomTensor(const Shape& shape, uint64_t stream, double scale = 1.0) {
  Tensor t = Tensor::Empty(shape, DType::kF64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = scale * NormalAt(20261122, stream, static_cast<uint64_t>(i));
  return t;
}

inline Tensor RandomTokens(const Shape& shape, int64_t vocab, uint64_t stream) {
  Tensor t = Tensor::Empty(shape, DType::kI32);
  RandomStream rng(99, stream);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng.Below(vocab));
  return t;
}

// Compares `analytic` (d objective / d values) with central differences of `objective`
// over up to `max_checks` elements of `values` (spread evenly over the tensor).
inline void ExpectGradientMatches(const std::string& what, Tensor values, const Tensor& analytic,
                                  const std::function<double()>& objective, int max_checks = 64,
                                  double rel_tol = 1e-6, double abs_tol = 1e-8) {
  ASSERT_EQ(values.shape(), analytic.shape()) << what;
  double* v = values.data<double>();
  const double* g = analytic.data<double>();
  const int64_t n = values.numel();
  const int64_t stride = std::max<int64_t>(1, n / max_checks);
  double max_seen = 0;
  for (int64_t i = 0; i < n; i += stride) {
    const double h = 1e-5 * std::max(1.0, std::fabs(v[i]));
    const double saved = v[i];
    v[i] = saved + h;
    const double up = objective();
    v[i] = saved - h;
    const double down = objective();
    v[i] = saved;
    const double numeric = (up - down) / (2 * h);
    max_seen = std::max(max_seen, std::fabs(numeric));
    EXPECT_NEAR(g[i], numeric, abs_tol + rel_tol * std::max(std::fabs(numeric), std::fabs(g[i])))
        << what << " element " << i;
  }
  // A check on all-zero gradients proves nothing.
  EXPECT_GT(max_seen, 1e-6) << what << ": gradients are all ~0; the check would be vacuous";
}

inline double Dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  const double* x = a.data<double>();
  const double* y = b.data<double>();
  for (int64_t i = 0; i < a.numel(); ++i) s += x[i] * y[i];
  return s;
}

}  // namespace baton::testing
