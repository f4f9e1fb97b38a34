// Fresh random parameters and gradients for the AdaFactor GPU tests.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "runtime/rng.h"
#include "runtime/tensor.h"

namespace baton::testing {

// Non-zero N(0, scale^2) draws of a named stream (a zero would hide a missing update).
inline std::vector<double> DrawNonZero(uint64_t seed, const std::string& stream, int64_t count, double scale) {
  std::vector<double> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    double z = NormalAt(seed, StreamId(stream), static_cast<uint64_t>(i));
    if (std::abs(z) < 1e-3) z = 0.5;
    v[static_cast<size_t>(i)] = scale * z;
  }
  return v;
}

// A host tensor of `values` in f32 or f64.
inline Tensor HostTensor(const Shape& shape, const std::vector<double>& values, DType dtype) {
  if (dtype == DType::kF64) return Tensor::FromVector<double>(shape, values);
  return Tensor::FromVector<float>(shape, std::vector<float>(values.begin(), values.end()));
}

}  // namespace baton::testing
