// Softmax cross-entropy over the real vocabulary. Logits of padded vocabulary
// rows (present only to make matrix sizes friendly) never enter the softmax.
// A negative target (kIgnoreTarget) is a row outside the loss: loss 0, zero
// gradient.
#include <algorithm>
#include <cmath>

#include "layers/cpu/kernels.h"

namespace baton::cpu {

template <typename T>
void SoftmaxCrossEntropy(const T* logits, const int32_t* targets, int64_t rows, int64_t padded_vocab, int64_t vocab,
                         T* losses, T* dlogits, T grad_scale) {
  // exp in the working precision T (float on the reference backend): this loop
  // touches every logit and dominates the head's non-GEMM time; sums in double.
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* z = logits + r * padded_vocab;
    T* g = dlogits ? dlogits + r * padded_vocab : nullptr;
    if (targets[r] < 0) {  // an ignored position: no loss, no gradient
      losses[r] = T(0);
      if (g) std::fill(g, g + padded_vocab, T(0));
      continue;
    }
    T mx = z[0];
    for (int64_t j = 1; j < vocab; ++j) mx = std::max(mx, z[j]);
    const T target_logit = z[targets[r]];  // read before dlogits may overwrite z
    double sum = 0;
    for (int64_t j = 0; j < vocab; ++j) {
      const T e = std::exp(z[j] - mx);
      sum += e;
      if (g) g[j] = e;
    }
    losses[r] = static_cast<T>(std::log(sum) + mx - target_logit);
    if (!g) continue;
    const T scale = static_cast<T>(grad_scale / sum);
    for (int64_t j = 0; j < vocab; ++j) g[j] *= scale;
    for (int64_t j = vocab; j < padded_vocab; ++j) g[j] = T(0);
    g[targets[r]] -= grad_scale;
  }
}

template void SoftmaxCrossEntropy<float>(const float*, const int32_t*, int64_t, int64_t, int64_t, float*, float*,
                                         float);
template void SoftmaxCrossEntropy<double>(const double*, const int32_t*, int64_t, int64_t, int64_t, double*, double*,
                                          double);

}  // namespace baton::cpu
