// Token and learned-position embeddings: gathers forward, ordered scatter-adds backward.
#include "layers/cpu/kernels.h"

#include <cstring>

namespace baton::cpu {

template <typename T>
void EmbeddingForward(const int32_t* ids, const T* table, T* out, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * cols, table + static_cast<int64_t>(ids[r]) * cols, cols * sizeof(T));
}

template <typename T>
void EmbeddingBackward(const int32_t* ids, const T* dy, T* grad_table, int64_t rows, int64_t cols) {
  // Serial over rows: two rows may hit the same token, and the order of the sum must not vary.
  for (int64_t r = 0; r < rows; ++r) {
    T* g = grad_table + static_cast<int64_t>(ids[r]) * cols;
    const T* d = dy + r * cols;
    for (int64_t c = 0; c < cols; ++c) g[c] += d[c];
  }
}

template <typename T>
void AddPositions(const T* positions, int64_t seq_len, T* y, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* p = positions + (r % seq_len) * cols;
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] += p[c];
  }
}

template <typename T>
void PositionsBackward(const T* dy, int64_t seq_len, T* grad_positions, int64_t rows, int64_t cols) {
  // Each position owns its row of the gradient; sequences are added in order.
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < seq_len; ++p)
    for (int64_t r = p; r < rows; r += seq_len)
      for (int64_t c = 0; c < cols; ++c) grad_positions[p * cols + c] += dy[r * cols + c];
}

#define BATON_INSTANTIATE(T)                                                         \
  template void EmbeddingForward<T>(const int32_t*, const T*, T*, int64_t, int64_t);  \
  template void EmbeddingBackward<T>(const int32_t*, const T*, T*, int64_t, int64_t); \
  template void AddPositions<T>(const T*, int64_t, T*, int64_t, int64_t);             \
  template void PositionsBackward<T>(const T*, int64_t, T*, int64_t, int64_t);
BATON_INSTANTIATE(float)
BATON_INSTANTIATE(double)
#undef BATON_INSTANTIATE

}  // namespace baton::cpu
