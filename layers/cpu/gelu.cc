// GELU, tanh form (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#include <cmath>

#include "layers/cpu/kernels.h"

namespace baton::cpu {
namespace {
constexpr double kSqrt2OverPi = 0.7978845608028654;
}

template <typename T>
void GeluForward(const T* x, T* y, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T v = x[i];
    y[i] = T(0.5) * v * (T(1) + std::tanh(T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v)));
  }
}

template <typename T>
void GeluBackward(const T* dy, const T* x, T* dx, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T v = x[i];
    T u = T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v);
    T t = std::tanh(u);
    T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * v * v);
    dx[i] = dy[i] * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * du);
  }
}

template void GeluForward<float>(const float*, float*, int64_t);
template void GeluForward<double>(const double*, double*, int64_t);
template void GeluBackward<float>(const float*, const float*, float*, int64_t);
template void GeluBackward<double>(const double*, const double*, double*, int64_t);

}  // namespace baton::cpu
