// RMSNorm: y = x * rstd * gain, rstd = 1 / sqrt(mean(x^2) + eps); gain may be
// null (parameter-free). Same structure as layernorm.cu: one warp per row for
// the forward and dx, deterministic column sums for grad_gain (computed before
// dx, so dx may alias dy or x). The residual-fused variants (AddRmsNormForward,
// RmsNormBackwardAdd) work as those of layernorm.cu.
#include <cmath>

#include "layers/cuda/kernels.h"
#include "layers/cuda/op_utils.cuh"

namespace baton::cuda {
namespace {

using detail::kWarp;
constexpr int kRowsPerBlock = 8;

// The gain of units u (1 without a gain).
template <int V>
__device__ __forceinline__ void LoadGain(const Bf16* gain, int64_t offset, float (&g)[V]) {
  if (gain) {
    detail::Load<V>(gain + offset, g);
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) g[i] = 1.f;
  }
}

// kAdd: x is first written as bf16(a + b) by the lane that reads it back (see layernorm.cu).
template <int V, bool kAdd>
__global__ void __launch_bounds__(kWarp * kRowsPerBlock)
    RmsNormForwardKernel(const Bf16* a, const Bf16* b, Bf16* x, const Bf16* __restrict__ gain, float eps, Bf16* y,
                         float* __restrict__ rstd, int64_t rows, int64_t cols) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;  // the whole warp
  const Bf16* xr = x + r * cols;
  Bf16* yr = y + r * cols;
  const int64_t units = cols / V;
  float ss = 0.f;
  for (int64_t u = lane; u < units; u += kWarp) {
    float f[V];
    detail::LoadSum<V, kAdd>(a, b, x, r * cols + u * V, f);
#pragma unroll
    for (int i = 0; i < V; ++i) ss += f[i] * f[i];
  }
  const float rs = 1.f / sqrtf(detail::WarpSum(ss) / static_cast<float>(cols) + eps);
  for (int64_t u = lane; u < units; u += kWarp) {
    float f[V], g[V];
    detail::Load<V>(xr + u * V, f);
    LoadGain<V>(gain, u * V, g);
#pragma unroll
    for (int i = 0; i < V; ++i) f[i] = f[i] * rs * g[i];
    detail::Store<V>(yr + u * V, f);
  }
  if (lane == 0) rstd[r] = rs;
}

// dx = rstd * (g*dy - xhat * mean(g*dy*xhat)), xhat = x * rstd (+ residual when kResidual).
template <int V, bool kResidual>
__global__ void __launch_bounds__(kWarp * kRowsPerBlock)
    RmsNormDxKernel(const Bf16* dy, const Bf16* x, const Bf16* __restrict__ gain, const float* __restrict__ rstd,
                    const Bf16* residual, Bf16* dx, int64_t rows, int64_t cols) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;
  const Bf16* dyr = dy + r * cols;
  const Bf16* xr = x + r * cols;
  Bf16* dxr = dx + r * cols;
  const float rs = rstd[r];
  const int64_t units = cols / V;
  float sum_dx = 0.f;
  for (int64_t u = lane; u < units; u += kWarp) {
    float d[V], f[V], g[V];
    detail::Load<V>(dyr + u * V, d);
    detail::Load<V>(xr + u * V, f);
    LoadGain<V>(gain, u * V, g);
#pragma unroll
    for (int i = 0; i < V; ++i) sum_dx += d[i] * g[i] * (f[i] * rs);
  }
  const float mean_dx = detail::WarpSum(sum_dx) / static_cast<float>(cols);
  for (int64_t u = lane; u < units; u += kWarp) {
    float d[V], f[V], g[V];
    detail::Load<V>(dyr + u * V, d);
    detail::Load<V>(xr + u * V, f);
    LoadGain<V>(gain, u * V, g);
#pragma unroll
    for (int i = 0; i < V; ++i) d[i] = rs * (d[i] * g[i] - (f[i] * rs) * mean_dx);
    if constexpr (kResidual) {
      float res[V];
      detail::Load<V>(residual + r * cols + u * V, res);
#pragma unroll
      for (int i = 0; i < V; ++i) d[i] += res[i];
    }
    detail::Store<V>(dxr + u * V, d);
  }
}

struct RmsNormGainRows {  // dy * xhat
  const Bf16* dy;
  const Bf16* x;
  const float* rstd;
  int64_t cols;
  template <int V>
  __device__ __forceinline__ void Row(int64_t r, int64_t c, float (&v)[1][V]) const {
    float d[V], f[V];
    detail::Load<V>(dy + r * cols + c, d);
    detail::Load<V>(x + r * cols + c, f);
    const float rs = rstd[r];
#pragma unroll
    for (int i = 0; i < V; ++i) v[0][i] = d[i] * (f[i] * rs);
  }
};

unsigned RowBlocks(int64_t rows) { return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

// The forward's vector width, the same for RmsNormForward and AddRmsNormForward.
bool ForwardVec(const Bf16* x, const Bf16* gain, const Bf16* y, int64_t cols) {
  return cols % 8 == 0 && detail::Aligned16(x) && detail::Aligned16(y) && (!gain || detail::Aligned16(gain));
}

template <bool kAdd>
void LaunchForward(bool vec, const Bf16* a, const Bf16* b, Bf16* x, const Bf16* gain, float eps, Bf16* y, float* rstd,
                   int64_t rows, int64_t cols) {
  if (vec) {
    RmsNormForwardKernel<8, kAdd><<<RowBlocks(rows), kWarp * kRowsPerBlock, 0, ComputeStream()>>>(
        a, b, x, gain, eps, y, rstd, rows, cols);
  } else {
    RmsNormForwardKernel<1, kAdd><<<RowBlocks(rows), kWarp * kRowsPerBlock, 0, ComputeStream()>>>(
        a, b, x, gain, eps, y, rstd, rows, cols);
  }
  BATON_CUDA_CHECK_LAUNCH(RmsNormForwardKernel);
}

template <bool kResidual>
void LaunchBackward(const Bf16* dy, const Bf16* x, const Bf16* gain, const float* rstd, const Bf16* residual, Bf16* dx,
                    float* grad_gain, int64_t rows, int64_t cols) {
  const bool vec_params = cols % 8 == 0 && detail::Aligned16(dy) && detail::Aligned16(x);
  // The gain's gradient first: it reads dy and x, which dx may overwrite.
  if (grad_gain) {
    detail::ColumnSums<1>(rows, cols, vec_params, RmsNormGainRows{dy, x, rstd, cols},
                          detail::GradPointers<1>{{grad_gain}});
  }
  const bool vec = vec_params && detail::Aligned16(dx) && (!gain || detail::Aligned16(gain)) &&
                   (!kResidual || detail::Aligned16(residual));
  if (vec) {
    RmsNormDxKernel<8, kResidual><<<RowBlocks(rows), kWarp * kRowsPerBlock, 0, ComputeStream()>>>(
        dy, x, gain, rstd, residual, dx, rows, cols);
  } else {
    RmsNormDxKernel<1, kResidual><<<RowBlocks(rows), kWarp * kRowsPerBlock, 0, ComputeStream()>>>(
        dy, x, gain, rstd, residual, dx, rows, cols);
  }
  BATON_CUDA_CHECK_LAUNCH(RmsNormDxKernel);
}

}  // namespace

void RmsNormForward(const Bf16* x, const Bf16* gain, float eps, Bf16* y, float* rstd, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  LaunchForward<false>(ForwardVec(x, gain, y, cols), nullptr, nullptr, const_cast<Bf16*>(x), gain, eps, y, rstd, rows,
                       cols);  // kAdd = false never writes x
}

void RmsNormBackward(const Bf16* dy, const Bf16* x, const Bf16* gain, const float* rstd, Bf16* dx, float* grad_gain,
                     int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  LaunchBackward<false>(dy, x, gain, rstd, nullptr, dx, grad_gain, rows, cols);
}

void AddRmsNormForward(const Bf16* a, const Bf16* b, const Bf16* gain, float eps, Bf16* sum, Bf16* y, float* rstd,
                       int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  const bool vec = ForwardVec(sum, gain, y, cols);
  if (vec && !(detail::Aligned16(a) && detail::Aligned16(b))) {  // rare: keep RmsNormForward's order
    Add(a, b, sum, rows * cols, DType::kBF16);
    RmsNormForward(sum, gain, eps, y, rstd, rows, cols);
    return;
  }
  LaunchForward<true>(vec, a, b, sum, gain, eps, y, rstd, rows, cols);
}

void RmsNormBackwardAdd(const Bf16* dy, const Bf16* x, const Bf16* gain, const float* rstd, const Bf16* residual,
                        Bf16* dx, float* grad_gain, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  LaunchBackward<true>(dy, x, gain, rstd, residual, dx, grad_gain, rows, cols);
}

}  // namespace baton::cuda
