// LayerNorm over the last dimension: y = (x - mean) * rstd * gain + bias.
//
// Forward and dx: one warp per row (8 rows per 256-thread block); lane l takes
// the V-element units l, l + 32, ... of the row, sums in fp32 in that order, and
// the lanes are combined by a butterfly (WarpSum), so the order depends only on
// cols. mean and rstd are saved in fp32. grad_gain / grad_bias: deterministic
// column sums (op_utils.cuh), computed before dx so that dx may alias dy or x.
//
// Fused with the residual adds around them (kernels.h): AddLayerNormForward
// writes sum = bf16(a + b) in its first pass and normalises what it wrote, in the
// same order as LayerNormForward (same V), so it gives the bits of Add then
// LayerNormForward; LayerNormBackwardAdd adds the residual gradient to dx in fp32
// before the one rounding.
#include <cmath>

#include "layers/cuda/kernels.h"
#include "layers/cuda/op_utils.cuh"

namespace baton::cuda {
namespace {

using detail::kWarp;
constexpr int kRowsPerBlock = 8;

// x and y may alias: every lane has read all it needs of its units before writing them.
// kAdd: x (the sum) is first written as bf16(a + b), unit by unit, by the lane that reads it
// back (x may alias a or b); a and b are unused otherwise.
template <int V, bool kAdd>
__global__ void __launch_bounds__(kWarp * kRowsPerBlock)
    LayerNormForwardKernel(const Bf16* a, const Bf16* b, Bf16* x, const Bf16* __restrict__ gain,
                           const Bf16* __restrict__ bias, float eps, Bf16* y, float* __restrict__ mean,
                           float* __restrict__ rstd, int64_t rows, int64_t cols) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;  // the whole warp
  const Bf16* xr = x + r * cols;
  Bf16* yr = y + r * cols;
  const int64_t units = cols / V;
  float sum = 0.f;
  for (int64_t u = lane; u < units; u += kWarp) {
    float f[V];
    detail::LoadSum<V, kAdd>(a, b, x, r * cols + u * V, f);
#pragma unroll
    for (int i = 0; i < V; ++i) sum += f[i];
  }
  const float mu = detail::WarpSum(sum) / static_cast<float>(cols);
  float var = 0.f;
  for (int64_t u = lane; u < units; u += kWarp) {
    float f[V];
    detail::Load<V>(xr + u * V, f);
#pragma unroll
    for (int i = 0; i < V; ++i) var += (f[i] - mu) * (f[i] - mu);
  }
  const float rs = 1.f / sqrtf(detail::WarpSum(var) / static_cast<float>(cols) + eps);
  for (int64_t u = lane; u < units; u += kWarp) {
    float f[V], g[V], b[V];
    detail::Load<V>(xr + u * V, f);
    detail::Load<V>(gain + u * V, g);
    detail::Load<V>(bias + u * V, b);
#pragma unroll
    for (int i = 0; i < V; ++i) f[i] = (f[i] - mu) * rs * g[i] + b[i];
    detail::Store<V>(yr + u * V, f);
  }
  if (lane == 0) {
    mean[r] = mu;
    rstd[r] = rs;
  }
}

// dx = rstd * (g*dy - mean(g*dy) - xhat * mean(g*dy*xhat)) (+ residual when kResidual);
// dx may alias dy, x or residual.
template <int V, bool kResidual>
__global__ void __launch_bounds__(kWarp * kRowsPerBlock)
    LayerNormDxKernel(const Bf16* dy, const Bf16* x, const Bf16* __restrict__ gain, const float* __restrict__ mean,
                      const float* __restrict__ rstd, const Bf16* residual, Bf16* dx, int64_t rows, int64_t cols) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;
  const Bf16* dyr = dy + r * cols;
  const Bf16* xr = x + r * cols;
  Bf16* dxr = dx + r * cols;
  const float mu = mean[r], rs = rstd[r];
  const int64_t units = cols / V;
  float sum_d = 0.f, sum_dx = 0.f;
  for (int64_t u = lane; u < units; u += kWarp) {
    float d[V], f[V], g[V];
    detail::Load<V>(dyr + u * V, d);
    detail::Load<V>(xr + u * V, f);
    detail::Load<V>(gain + u * V, g);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const float dg = d[i] * g[i];
      sum_d += dg;
      sum_dx += dg * ((f[i] - mu) * rs);
    }
  }
  const float mean_d = detail::WarpSum(sum_d) / static_cast<float>(cols);
  const float mean_dx = detail::WarpSum(sum_dx) / static_cast<float>(cols);
  for (int64_t u = lane; u < units; u += kWarp) {
    float d[V], f[V], g[V];
    detail::Load<V>(dyr + u * V, d);
    detail::Load<V>(xr + u * V, f);
    detail::Load<V>(gain + u * V, g);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const float xhat = (f[i] - mu) * rs;
      d[i] = rs * (d[i] * g[i] - mean_d - xhat * mean_dx);
    }
    if constexpr (kResidual) {
      float res[V];
      detail::Load<V>(residual + r * cols + u * V, res);
#pragma unroll
      for (int i = 0; i < V; ++i) d[i] += res[i];
    }
    detail::Store<V>(dxr + u * V, d);
  }
}

// Column quantities of the parameter gradients: dy * xhat (gain) and dy (bias).
struct LayerNormParamRows {
  const Bf16* dy;
  const Bf16* x;
  const float* mean;
  const float* rstd;
  int64_t cols;
  template <int V>
  __device__ __forceinline__ void Row(int64_t r, int64_t c, float (&v)[2][V]) const {
    float d[V], f[V];
    detail::Load<V>(dy + r * cols + c, d);
    detail::Load<V>(x + r * cols + c, f);
    const float mu = mean[r], rs = rstd[r];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      v[0][i] = d[i] * ((f[i] - mu) * rs);
      v[1][i] = d[i];
    }
  }
};

unsigned RowBlocks(int64_t rows) { return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

// The vector width of the forward: the same for LayerNormForward and AddLayerNormForward, whose
// sums then run in the same order.
bool ForwardVec(const Bf16* x, const Bf16* gain, const Bf16* bias, const Bf16* y, int64_t cols) {
  return cols % 8 == 0 && detail::Aligned16(x) && detail::Aligned16(gain) && detail::Aligned16(bias) &&
         detail::Aligned16(y);
}

template <bool kAdd>
void LaunchForward(bool vec, const Bf16* a, const Bf16* b, Bf16* x, const Bf16* gain, const Bf16* bias, float eps,
                   Bf16* y, float* mean, float* rstd, int64_t rows, int64_t cols) {
  if (vec) {
    LayerNormForwardKernel<8, kAdd><<<RowBlocks(rows), kWarp * kRowsPerBlock, 0, ComputeStream()>>>(
        a, b, x, gain, bias, eps, y, mean, rstd, rows, cols);
  } else {
    LayerNormForwardKernel<1, kAdd><<<RowBlocks(rows), kWarp * kRowsPerBlock, 0, ComputeStream()>>>(
        a, b, x, gain, bias, eps, y, mean, rstd, rows, cols);
  }
  BATON_CUDA_CHECK_LAUNCH(LayerNormForwardKernel);
}

template <bool kResidual>
void LaunchBackward(const Bf16* dy, const Bf16* x, const Bf16* gain, const float* mean, const float* rstd,
                    const Bf16* residual, Bf16* dx, float* grad_gain, float* grad_bias, int64_t rows, int64_t cols) {
  // Parameter gradients first: they read dy and x, which dx may overwrite.
  const bool vec_params = cols % 8 == 0 && detail::Aligned16(dy) && detail::Aligned16(x);
  detail::ColumnSums<2>(rows, cols, vec_params, LayerNormParamRows{dy, x, mean, rstd, cols},
                        detail::GradPointers<2>{{grad_gain, grad_bias}});
  const bool vec = vec_params && detail::Aligned16(gain) && detail::Aligned16(dx) &&
                   (!kResidual || detail::Aligned16(residual));
  if (vec) {
    LayerNormDxKernel<8, kResidual><<<RowBlocks(rows), kWarp * kRowsPerBlock, 0, ComputeStream()>>>(
        dy, x, gain, mean, rstd, residual, dx, rows, cols);
  } else {
    LayerNormDxKernel<1, kResidual><<<RowBlocks(rows), kWarp * kRowsPerBlock, 0, ComputeStream()>>>(
        dy, x, gain, mean, rstd, residual, dx, rows, cols);
  }
  BATON_CUDA_CHECK_LAUNCH(LayerNormDxKernel);
}

}  // namespace

void LayerNormForward(const Bf16* x, const Bf16* gain, const Bf16* bias, float eps, Bf16* y, float* mean, float* rstd,
                      int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  LaunchForward<false>(ForwardVec(x, gain, bias, y, cols), nullptr, nullptr, const_cast<Bf16*>(x), gain, bias, eps, y,
                       mean, rstd, rows, cols);  // kAdd = false never writes x
}

void LayerNormBackward(const Bf16* dy, const Bf16* x, const Bf16* gain, const float* mean, const float* rstd,
                       Bf16* dx, float* grad_gain, float* grad_bias, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  LaunchBackward<false>(dy, x, gain, mean, rstd, nullptr, dx, grad_gain, grad_bias, rows, cols);
}

void AddLayerNormForward(const Bf16* a, const Bf16* b, const Bf16* gain, const Bf16* bias, float eps, Bf16* sum,
                         Bf16* y, float* mean, float* rstd, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  const bool vec = ForwardVec(sum, gain, bias, y, cols);
  if (vec && !(detail::Aligned16(a) && detail::Aligned16(b))) {  // rare: keep LayerNormForward's order
    Add(a, b, sum, rows * cols, DType::kBF16);
    LayerNormForward(sum, gain, bias, eps, y, mean, rstd, rows, cols);
    return;
  }
  LaunchForward<true>(vec, a, b, sum, gain, bias, eps, y, mean, rstd, rows, cols);
}

void LayerNormBackwardAdd(const Bf16* dy, const Bf16* x, const Bf16* gain, const float* mean, const float* rstd,
                          const Bf16* residual, Bf16* dx, float* grad_gain, float* grad_bias, int64_t rows,
                          int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  LaunchBackward<true>(dy, x, gain, mean, rstd, residual, dx, grad_gain, grad_bias, rows, cols);
}

}  // namespace baton::cuda
