// What the GPU op tests share: bf16-valued random inputs, upload helpers and
// the tolerance comparison (see the table at the top of gpu_ops_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "layers/ops.h"
#include "runtime/dtype.h"
#include "runtime/tensor.h"
#include "tests/layers/grad_check.h"

namespace baton::testing {

inline const Device kGpu = Device::CUDA(0);

struct Tol {
  double rel, abs;
};
constexpr Tol kBf16Out{1.0 / 128, 1e-4};
constexpr Tol kBf16Cancel{1.0 / 128, 1e-3};
constexpr Tol kF32Accum{1e-5, 1e-5};
// A fused op against the unfused GPU sequence, which rounds its intermediate to
// bf16 once more: up to half a bf16 ulp of the intermediate, whose magnitude is
// bounded by the outputs' scale here, on top of the output rounding.
constexpr Tol kBf16ExtraRounding{1.0 / 128, 1.0 / 128};
constexpr Tol kExact{0, 0};

// f32 host tensor of N(0, scale) values, rounded to bf16 when `bf16`.
inline Tensor Random(const Shape& shape, uint64_t stream, double scale = 1.0, bool bf16 = true) {
  Tensor d = RandomTensor(shape, stream, scale);
  Tensor f = Tensor::Empty(shape, DType::kF32);
  for (int64_t i = 0; i < f.numel(); ++i) {
    const float v = static_cast<float>(d.data<double>()[i]);
    f.data<float>()[i] = bf16 ? Bf16ToFloat(FloatToBf16(v)) : v;
  }
  return f;
}
inline Tensor RandomF32(const Shape& shape, uint64_t stream, double scale = 1.0) { return Random(shape, stream, scale, false); }
// The (bf16-valued) host f32 tensor as a bf16 GPU tensor: exact.
inline Tensor GpuBf16(const Tensor& host) { return ops::Cast(host.To(kGpu), DType::kBF16); }
inline Tensor GpuF32(const Tensor& host) { return host.To(kGpu); }

inline void ExpectClose(const Tensor& gpu, const Tensor& ref, Tol tol, const std::string& what) {
  const std::vector<double> g = gpu.ToDoubles(), r = ref.ToDoubles();
  ASSERT_EQ(g.size(), r.size()) << what;
  double scale = 0;
  for (double v : r)
    if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
  int64_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (g[i] == r[i]) continue;  // also equal infinities
    const double allowed = tol.rel * std::fabs(r[i]) + tol.abs * scale;
    if (!(std::fabs(g[i] - r[i]) <= allowed)) {  // also catches NaN
      if (bad < 5)
        ADD_FAILURE() << what << ": element " << i << " gpu " << g[i] << " ref " << r[i] << " (allowed "
                      << allowed << ", max|ref| " << scale << ")";
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.size() << " elements out of tolerance";
}

inline void ExpectBitwise(const Tensor& a, const Tensor& b, const std::string& what) {
  const std::vector<double> x = a.ToDoubles(), y = b.ToDoubles();
  ASSERT_EQ(x.size(), y.size()) << what;
  int64_t bad = 0;
  for (size_t i = 0; i < x.size(); ++i) bad += !(x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i])));
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << x.size() << " elements differ";
}


}  // namespace baton::testing
