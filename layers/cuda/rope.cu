// Rotary position embedding in place on bf16 q or k, or both side by side in the
// packed qkv (heads * head_dim elements of each row, rows `row_stride` apart, row r
// at position m = r % seq_len). Pair i of every head rotates by
// m * theta_i, theta_i = base^(-2i/head_dim): one thread per (row, i) computes
// the angle's cosine and sine once, in double (angles reach thousands of
// radians), and rotates pair i of every head of the row in fp32.
#include <cmath>

#include "layers/cuda/kernels.h"
#include "layers/cuda/op_utils.cuh"

namespace baton::cuda {
namespace {

__global__ void RopeKernel(Bf16* x, int64_t rows, int64_t row_stride, int64_t seq_len, int64_t heads,
                           int64_t head_dim, bool interleaved, double base, bool inverse) {
  const int64_t half = head_dim / 2, total = rows * half;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const int64_t r = t / half, i = t - r * half;
    const double m = static_cast<double>(r % seq_len);
    const double theta = pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    double sd, cd;
    sincos((inverse ? -m : m) * theta, &sd, &cd);
    const float s = static_cast<float>(sd), c = static_cast<float>(cd);
    Bf16* row = x + r * row_stride;
    const int64_t ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + half;
    for (int64_t h = 0; h < heads; ++h) {
      Bf16* v = row + h * head_dim;
      const float xa = detail::ToF(v[ia]), xb = detail::ToF(v[ib]);
      v[ia] = detail::ToB(xa * c - xb * s);
      v[ib] = detail::ToB(xa * s + xb * c);
    }
  }
}

}  // namespace

void Rope(Bf16* x, int64_t rows, int64_t row_stride, int64_t seq_len, int64_t heads, int64_t head_dim,
          bool interleaved, double base, bool inverse) {
  const int64_t pairs = rows * (head_dim / 2);
  if (pairs <= 0 || heads <= 0 || seq_len <= 0) return;
  const int threads = 256;
  RopeKernel<<<detail::GridFor(pairs, threads), threads, 0, ComputeStream()>>>(x, rows, row_stride, seq_len, heads,
                                                                               head_dim, interleaved, base, inverse);
  BATON_CUDA_CHECK_LAUNCH(RopeKernel);
}

}  // namespace baton::cuda
