// grad_bias[c] += sum over rows of dy[r, c]: deterministic column sums
// (per-chunk partials in fp32, then the chunks in order; see op_utils.cuh).
#include "layers/cuda/kernels.h"
#include "layers/cuda/op_utils.cuh"

namespace baton::cuda {
namespace {

struct BiasRows {
  const Bf16* dy;
  int64_t cols;
  template <int V>
  __device__ __forceinline__ void Row(int64_t r, int64_t c, float (&v)[1][V]) const {
    detail::Load<V>(dy + r * cols + c, v[0]);
  }
};

}  // namespace

void BiasGrad(const Bf16* dy, float* grad_bias, int64_t rows, int64_t cols) {
  const bool vec = cols % 8 == 0 && detail::Aligned16(dy);
  detail::ColumnSums<1>(rows, cols, vec, BiasRows{dy, cols}, detail::GradPointers<1>{{grad_bias}});
}

}  // namespace baton::cuda
