// Softmax cross-entropy over the first `vocab` of `padded_vocab` columns, one
// block per row.
//
// Pass 1: each thread keeps an online (max, sum of exp(z - max)) over its units
// (V columns each: units t, t + T, ...), in fp32; the pairs are merged by a
// warp butterfly, lane 0 of every warp publishes, and every thread merges the
// warps in warp order: the same (M, S) in all threads, in an order fixed by
// the shape. loss = log(S) + M - z[target].
// Pass 2 (when dlogits is given): grad_scale * (exp(z - M) / S - onehot) in
// bf16, zero in the padded columns. dlogits may alias logits: pass 1 (and the
// read of z[target]) finishes in every thread before the block's barrier, and
// in pass 2 each thread reads a unit before writing the same unit.
// A negative target (kIgnoreTarget) is a row outside the loss: loss 0 and a
// zero gradient row. A target >= vocab gives a NaN loss (and no onehot) rather
// than a read outside the row.
// The order of every sum depends on the shape and on V (16-byte vectors when
// the pointers are 16-byte aligned and padded_vocab % 8 == 0).
#include <cmath>
#include <string>

#include "layers/cuda/kernels.h"
#include "layers/cuda/op_utils.cuh"

namespace baton::cuda {
namespace {

using detail::kWarp;
constexpr float kLog2e = 1.4426950408889634f;

// exp(z - m) as 2^((z - m) log2(e)): exp2f (about 2 ulp) is cheaper than expf's
// range reduction, and this runs for every logit, twice. z == m gives exactly 1.
__device__ __forceinline__ float ExpShifted(float z, float m) { return exp2f((z - m) * kLog2e); }

// (m, s) <- merge of (m, s) and (om, os): the sums rescaled to the larger max.
__device__ __forceinline__ void Merge(float& m, float& s, float om, float os) {
  const float nm = fmaxf(m, om);
  if (nm == -INFINITY) return;  // both empty: s and os are 0
  s = s * expf(m - nm) + os * expf(om - nm);
  m = nm;
}

template <int V>
__global__ void CrossEntropyKernel(const Bf16* logits, const int32_t* __restrict__ targets, int64_t padded,
                                   int64_t vocab, float* __restrict__ losses, Bf16* dlogits, float grad_scale) {
  __shared__ float warp_m[kWarp], warp_s[kWarp];
  __shared__ float target_logit;
  const int64_t row = blockIdx.x;
  const Bf16* z = logits + row * padded;
  const int target = targets[row];
  if (target < 0) {  // the whole block takes this branch
    if (threadIdx.x == 0) losses[row] = 0.f;
    if (dlogits == nullptr) return;
    Bf16* g = dlogits + row * padded;
    float f[V];
#pragma unroll
    for (int i = 0; i < V; ++i) f[i] = 0.f;
    for (int64_t u = threadIdx.x; u < padded / V; u += blockDim.x) detail::Store<V>(g + u * V, f);
    return;
  }
  const bool target_ok = target >= 0 && target < vocab;
  if (threadIdx.x == 0) target_logit = target_ok ? detail::ToF(z[target]) : NAN;

  // Pass 1: units covering [0, vocab); columns past vocab are masked.
  const int64_t units = (vocab + V - 1) / V;
  float m = -INFINITY, s = 0.f;
  for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
    float f[V];
    detail::Load<V>(z + u * V, f);
    float local = -INFINITY;
#pragma unroll
    for (int i = 0; i < V; ++i)
      if (u * V + i < vocab) local = fmaxf(local, f[i]);
    if (local > m) {
      s *= expf(m - local);  // 0 while m is -inf (s is 0 then too)
      m = local;
    }
#pragma unroll
    for (int i = 0; i < V; ++i)
      if (u * V + i < vocab) s += ExpShifted(f[i], m);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float om = __shfl_xor_sync(0xffffffffu, m, offset);
    const float os = __shfl_xor_sync(0xffffffffu, s, offset);
    Merge(m, s, om, os);
  }
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  if (lane == 0) {
    warp_m[warp] = m;
    warp_s[warp] = s;
  }
  __syncthreads();  // also orders every read of the row above before the writes below
  float row_max = -INFINITY, sum = 0.f;
  for (int w = 0; w < warps; ++w) Merge(row_max, sum, warp_m[w], warp_s[w]);
  if (threadIdx.x == 0) losses[row] = logf(sum) + row_max - target_logit;
  if (dlogits == nullptr) return;

  // Pass 2: every column of the padded row.
  Bf16* g = dlogits + row * padded;
  const float scale = grad_scale / sum;
  const int64_t all_units = padded / V;  // V divides padded (checked by the launcher)
  for (int64_t u = threadIdx.x; u < all_units; u += blockDim.x) {
    float f[V];
    detail::Load<V>(z + u * V, f);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const int64_t j = u * V + i;
      float p = j < vocab ? ExpShifted(f[i], row_max) * scale : 0.f;
      if (j == target && target_ok) p -= grad_scale;
      f[i] = p;
    }
    detail::Store<V>(g + u * V, f);
  }
}

}  // namespace

void SoftmaxCrossEntropy(const Bf16* logits, const int32_t* targets, int64_t rows, int64_t padded_vocab, int64_t vocab,
                         float* losses, Bf16* dlogits, float grad_scale) {
  if (rows <= 0) return;
  if (vocab <= 0 || vocab > padded_vocab)
    Fail("cuda::SoftmaxCrossEntropy", "vocab " + std::to_string(vocab) + " of " + std::to_string(padded_vocab),
         __FILE__, __LINE__);
  const bool vec = padded_vocab % 8 == 0 && detail::Aligned16(logits) && (!dlogits || detail::Aligned16(dlogits));
  const int64_t units = vec ? vocab / 8 : vocab;
  // Block size from the shape only (it fixes the order of the sums).
  const int threads = units >= 4096 ? 512 : (units >= 1024 ? 256 : 128);
  if (vec) {
    CrossEntropyKernel<8><<<static_cast<unsigned>(rows), threads, 0, ComputeStream()>>>(
        logits, targets, padded_vocab, vocab, losses, dlogits, grad_scale);
  } else {
    CrossEntropyKernel<1><<<static_cast<unsigned>(rows), threads, 0, ComputeStream()>>>(
        logits, targets, padded_vocab, vocab, losses, dlogits, grad_scale);
  }
  BATON_CUDA_CHECK_LAUNCH(CrossEntropyKernel);
}

}  // namespace baton::cuda
