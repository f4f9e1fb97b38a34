// RMSNorm: y = x * rstd * gain, rstd = 1 / sqrt(mean(x^2) + eps); gain may be absent (parameter-free).
#include <cmath>

#include "layers/cpu/kernels.h"

namespace baton::cpu {

template <typename T>
void RmsNormForward(const T* x, const T* gain, T eps, T* y, T* rstd, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    double ss = 0;
    for (int64_t c = 0; c < cols; ++c) ss += static_cast<double>(xr[c]) * xr[c];
    double rs = 1.0 / std::sqrt(ss / cols + eps);
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = static_cast<T>(xr[c] * rs * (gain ? gain[c] : T(1)));
    rstd[r] = static_cast<T>(rs);
  }
}

template <typename T>
void RmsNormBackward(const T* dy, const T* x, const T* gain, const T* rstd, T* dx, T* grad_gain, int64_t rows,
                     int64_t cols) {
  // dx = rstd * (g*dy - xhat * mean(g*dy*xhat))
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* dyr = dy + r * cols;
    const T* xr = x + r * cols;
    double mean_dx = 0;
    for (int64_t c = 0; c < cols; ++c) mean_dx += static_cast<double>(dyr[c]) * (gain ? gain[c] : T(1)) * xr[c] * rstd[r];
    mean_dx /= cols;
    for (int64_t c = 0; c < cols; ++c) {
      double xhat = static_cast<double>(xr[c]) * rstd[r];
      dx[r * cols + c] = static_cast<T>(rstd[r] * (static_cast<double>(dyr[c]) * (gain ? gain[c] : T(1)) - xhat * mean_dx));
    }
  }
  if (!grad_gain) return;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < cols; ++c) {
    double gg = 0;
    for (int64_t r = 0; r < rows; ++r) gg += static_cast<double>(dy[r * cols + c]) * x[r * cols + c] * rstd[r];
    grad_gain[c] += static_cast<T>(gg);
  }
}

#define BATON_INSTANTIATE(T)                                                                 \
  template void RmsNormForward<T>(const T*, const T*, T, T*, T*, int64_t, int64_t);          \
  template void RmsNormBackward<T>(const T*, const T*, const T*, const T*, T*, T*, int64_t, int64_t);
BATON_INSTANTIATE(float)
BATON_INSTANTIATE(double)
#undef BATON_INSTANTIATE

}  // namespace baton::cpu
