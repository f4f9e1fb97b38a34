// LayerNorm over the last dimension: y = (x - mean) * rstd * gain + bias.
#include <cmath>

#include "layers/cpu/kernels.h"

namespace baton::cpu {

template <typename T>
void LayerNormForward(const T* x, const T* gain, const T* bias, T eps, T* y, T* mean, T* rstd, int64_t rows,
                      int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    double mu = sum / cols;
    double var = 0;
    for (int64_t c = 0; c < cols; ++c) var += (xr[c] - mu) * (xr[c] - mu);
    double rs = 1.0 / std::sqrt(var / cols + eps);
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = static_cast<T>((xr[c] - mu) * rs) * gain[c] + bias[c];
    mean[r] = static_cast<T>(mu);
    rstd[r] = static_cast<T>(rs);
  }
}

template <typename T>
void LayerNormBackward(const T* dy, const T* x, const T* gain, const T* mean, const T* rstd, T* dx, T* grad_gain,
                       T* grad_bias, int64_t rows, int64_t cols) {
  // dx = rstd * (g*dy - mean(g*dy) - xhat * mean(g*dy*xhat))
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* dyr = dy + r * cols;
    const T* xr = x + r * cols;
    double mean_d = 0, mean_dx = 0;
    for (int64_t c = 0; c < cols; ++c) {
      double d = static_cast<double>(dyr[c]) * gain[c];
      mean_d += d;
      mean_dx += d * (xr[c] - mean[r]) * rstd[r];
    }
    mean_d /= cols;
    mean_dx /= cols;
    for (int64_t c = 0; c < cols; ++c) {
      double xhat = (xr[c] - mean[r]) * static_cast<double>(rstd[r]);
      dx[r * cols + c] = static_cast<T>(rstd[r] * (static_cast<double>(dyr[c]) * gain[c] - mean_d - xhat * mean_dx));
    }
  }
  // Parameter gradients: one column per thread, rows summed in order (deterministic).
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < cols; ++c) {
    double gg = 0, gb = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double d = dy[r * cols + c];
      gg += d * (x[r * cols + c] - mean[r]) * rstd[r];
      gb += d;
    }
    grad_gain[c] += static_cast<T>(gg);
    grad_bias[c] += static_cast<T>(gb);
  }
}

#define BATON_INSTANTIATE(T)                                                                                  \
  template void LayerNormForward<T>(const T*, const T*, const T*, T, T*, T*, T*, int64_t, int64_t);           \
  template void LayerNormBackward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*, int64_t, \
                                     int64_t);
BATON_INSTANTIATE(float)
BATON_INSTANTIATE(double)
#undef BATON_INSTANTIATE

}  // namespace baton::cpu
