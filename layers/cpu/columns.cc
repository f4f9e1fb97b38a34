// Column slices of row-major matrices: splitting a fused projection into its
// parts and putting their gradients back.
#include <cstring>

#include "layers/cpu/kernels.h"

namespace baton::cpu {

template <typename T>
void CopyColumns(const T* src, int64_t src_cols, int64_t begin, T* dst, int64_t rows, int64_t dst_cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_cols, src + r * src_cols + begin, dst_cols * sizeof(T));
}

template <typename T>
void SetColumns(const T* src, int64_t src_cols, int64_t begin, T* dst, int64_t rows, int64_t dst_cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_cols + begin, src + r * src_cols, src_cols * sizeof(T));
}

template void CopyColumns<float>(const float*, int64_t, int64_t, float*, int64_t, int64_t);
template void CopyColumns<double>(const double*, int64_t, int64_t, double*, int64_t, int64_t);
template void SetColumns<float>(const float*, int64_t, int64_t, float*, int64_t, int64_t);
template void SetColumns<double>(const double*, int64_t, int64_t, double*, int64_t, int64_t);

}  // namespace baton::cpu
