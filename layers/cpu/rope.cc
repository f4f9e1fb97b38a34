// Rotary position embedding (Su et al., RoFormer), in place on q or k (or both, side
// by side in the packed qkv: row r of the rotated part starts at x + r * row_stride).
// Pair i of a head rotates by angle m * theta_i, theta_i = base^(-2i/d), at position m.
#include <cmath>
#include <vector>

#include "layers/cpu/kernels.h"

namespace baton::cpu {

template <typename T>
void Rope(T* x, int64_t rows, int64_t row_stride, int64_t seq_len, int64_t heads, int64_t head_dim, bool interleaved,
          double base, bool inverse) {
  const int64_t half = head_dim / 2;
  std::vector<double> theta(half);
  for (int64_t i = 0; i < half; ++i) theta[i] = std::pow(base, -2.0 * i / head_dim);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const double m = static_cast<double>(r % seq_len);
    for (int64_t h = 0; h < heads; ++h) {
      T* v = x + r * row_stride + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const double angle = (inverse ? -m : m) * theta[i];
        const double c = std::cos(angle), s = std::sin(angle);
        T* a = interleaved ? v + 2 * i : v + i;
        T* b = interleaved ? v + 2 * i + 1 : v + i + half;
        const double xa = *a, xb = *b;
        *a = static_cast<T>(xa * c - xb * s);
        *b = static_cast<T>(xa * s + xb * c);
      }
    }
  }
}

template void Rope<float>(float*, int64_t, int64_t, int64_t, int64_t, int64_t, bool, double, bool);
template void Rope<double>(double*, int64_t, int64_t, int64_t, int64_t, int64_t, bool, double, bool);

}  // namespace baton::cpu
