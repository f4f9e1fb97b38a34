// Softmax cross-entropy over the real vocabulary. Logits of padded vocabulary
// rows (present only to make matrix sizes friendly) never enter the softmax.
#include <algorithm>
#include <cmath>

#include "layers/cpu/kernels.h"

namespace baton::cpu {

template <typename T>
void SoftmaxCrossEntropy(const T* logits, const int32_t* targets, int64_t rows, int64_t padded_vocab, int64_t vocab,
                         T* losses, T* dlogits, T grad_scale) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* z = logits + r * padded_vocab;
    double mx = -INFINITY;
    for (int64_t j = 0; j < vocab; ++j) mx = std::max(mx, static_cast<double>(z[j]));
    double sum = 0;
    for (int64_t j = 0; j < vocab; ++j) sum += std::exp(z[j] - mx);
    const double log_sum = std::log(sum) + mx;
    losses[r] = static_cast<T>(log_sum - z[targets[r]]);
    if (!dlogits) continue;
    T* g = dlogits + r * padded_vocab;
    for (int64_t j = 0; j < vocab; ++j) g[j] = static_cast<T>(std::exp(z[j] - log_sum) * grad_scale);
    for (int64_t j = vocab; j < padded_vocab; ++j) g[j] = T(0);
    g[targets[r]] -= grad_scale;
  }
}

template void SoftmaxCrossEntropy<float>(const float*, const int32_t*, int64_t, int64_t, int64_t, float*, float*,
                                         float);
template void SoftmaxCrossEntropy<double>(const double*, const int32_t*, int64_t, int64_t, int64_t, double*, double*,
                                          double);

}  // namespace baton::cpu
