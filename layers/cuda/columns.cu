// Column slices of row-major matrices (CopyColumns / SetColumns): a strided
// copy of `rows` rows of `width` bytes, in the widest unit (16, 8, 4, 2 or 1
// bytes) that divides both pointers, both row pitches and the width.
#include <cstdint>

#include "layers/cuda/kernels.h"
#include "layers/cuda/op_utils.cuh"
#include "runtime/cuda_device.h"

namespace baton::cuda {
namespace {

// Unit-sized element i of the flattened [rows, width_units] block.
template <typename U, typename I>
__global__ void CopyRowsKernel(const U* __restrict__ src, I src_pitch, U* __restrict__ dst, I dst_pitch, I rows,
                               I width) {
  const I total = rows * width;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const I r = i / width, c = i - r * width;
    dst[r * dst_pitch + c] = src[r * src_pitch + c];
  }
}

template <typename U>
void LaunchCopy(const void* src, int64_t src_pitch_bytes, void* dst, int64_t dst_pitch_bytes, int64_t rows,
                int64_t width_bytes) {
  constexpr int64_t kU = sizeof(U);
  const int64_t sp = src_pitch_bytes / kU, dp = dst_pitch_bytes / kU, w = width_bytes / kU;
  const int threads = 256;
  const int blocks = detail::GridFor(rows * w, threads);
  // 32-bit indexing when every offset fits (i < total < 2^31, offsets < 2^31).
  const int64_t span = rows * std::max(sp, dp);
  if (span < (int64_t{1} << 31)) {
    CopyRowsKernel<U, uint32_t><<<blocks, threads, 0, ComputeStream()>>>(
        static_cast<const U*>(src), static_cast<uint32_t>(sp), static_cast<U*>(dst), static_cast<uint32_t>(dp),
        static_cast<uint32_t>(rows), static_cast<uint32_t>(w));
  } else {
    CopyRowsKernel<U, int64_t><<<blocks, threads, 0, ComputeStream()>>>(static_cast<const U*>(src), sp,
                                                                         static_cast<U*>(dst), dp, rows, w);
  }
  BATON_CUDA_CHECK_LAUNCH(CopyRowsKernel);
}

// dst[r * dst_pitch + j] = src[r * src_pitch + j] for j < width (all in bytes).
void CopyRows(const void* src, int64_t src_pitch, void* dst, int64_t dst_pitch, int64_t rows, int64_t width) {
  if (rows <= 0 || width <= 0) return;
  const uint64_t bits = reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst) |
                        static_cast<uint64_t>(src_pitch) | static_cast<uint64_t>(dst_pitch) |
                        static_cast<uint64_t>(width);
  if ((bits & 15u) == 0) return LaunchCopy<uint4>(src, src_pitch, dst, dst_pitch, rows, width);
  if ((bits & 7u) == 0) return LaunchCopy<uint2>(src, src_pitch, dst, dst_pitch, rows, width);
  if ((bits & 3u) == 0) return LaunchCopy<uint32_t>(src, src_pitch, dst, dst_pitch, rows, width);
  if ((bits & 1u) == 0) return LaunchCopy<uint16_t>(src, src_pitch, dst, dst_pitch, rows, width);
  LaunchCopy<uint8_t>(src, src_pitch, dst, dst_pitch, rows, width);
}

}  // namespace

void CopyColumns(const void* src, int64_t src_cols, int64_t begin, void* dst, int64_t rows, int64_t dst_cols,
                 int elem_bytes) {
  const int64_t e = elem_bytes;
  CopyRows(static_cast<const char*>(src) + begin * e, src_cols * e, dst, dst_cols * e, rows, dst_cols * e);
}

void SetColumns(const void* src, int64_t src_cols, int64_t begin, void* dst, int64_t rows, int64_t dst_cols,
                int elem_bytes) {
  const int64_t e = elem_bytes;
  CopyRows(src, src_cols * e, static_cast<char*>(dst) + begin * e, dst_cols * e, rows, src_cols * e);
}

}  // namespace baton::cuda
