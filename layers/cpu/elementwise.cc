// Bias, residual and accumulation arithmetic.
#include "layers/cpu/kernels.h"

namespace baton::cpu {

template <typename T>
void AddBias(const T* bias, T* y, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] += bias[c];
}

template <typename T>
void BiasGrad(const T* dy, T* grad_bias, int64_t rows, int64_t cols) {
  // Columns are independent; rows are summed in order for a deterministic result.
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < cols; ++c) {
    double acc = 0;
    for (int64_t r = 0; r < rows; ++r) acc += dy[r * cols + c];
    grad_bias[c] += static_cast<T>(acc);
  }
}

template <typename T>
void Add(const T* a, const T* b, T* out, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <typename T>
void Axpy(T alpha, const T* src, T* dst, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) dst[i] += alpha * src[i];
}

#define BATON_INSTANTIATE(T)                                  \
  template void AddBias<T>(const T*, T*, int64_t, int64_t);   \
  template void BiasGrad<T>(const T*, T*, int64_t, int64_t);  \
  template void Add<T>(const T*, const T*, T*, int64_t);      \
  template void Axpy<T>(T, const T*, T*, int64_t);
BATON_INSTANTIATE(float)
BATON_INSTANTIATE(double)
#undef BATON_INSTANTIATE

}  // namespace baton::cpu
