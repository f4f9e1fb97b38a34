// Device helpers shared by the op kernels in layers/cuda/*.cu (not attention):
// bf16 <-> fp32 conversion, vector loads and stores of V elements (V = 8: one
// 16-byte access for bf16, two for fp32; V = 1: scalar), deterministic warp and
// block reductions, and launch sizing. Internal to layers/cuda/.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "layers/cuda/kernels.h"
#include "runtime/cuda_device.h"

namespace baton::cuda::detail {

constexpr int kWarp = 32;

__host__ __device__ inline bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Blocks for a grid-stride loop over `items` with `threads` threads a block:
// enough to fill the GPU, no more than the work needs.
inline int GridFor(int64_t items, int threads) {
  const int64_t needed = (items + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(Properties().sm_count) * 16;
  return static_cast<int>(std::max<int64_t>(1, std::min(needed, cap)));
}

__device__ __forceinline__ float ToF(Bf16 v) { return __bfloat162float(__ushort_as_bfloat16(v)); }
__device__ __forceinline__ Bf16 ToB(float f) { return __bfloat16_as_ushort(__float2bfloat16_rn(f)); }

// V consecutive elements at p (p 16-byte aligned when V = 8).
template <int V>
__device__ __forceinline__ void Load(const Bf16* p, float (&f)[V]) {
  if constexpr (V == 8) {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      f[2 * i] = ToF(static_cast<Bf16>(w[i] & 0xffffu));  // little-endian: the lower half is the first element
      f[2 * i + 1] = ToF(static_cast<Bf16>(w[i] >> 16));
    }
  } else {
    static_assert(V == 1, "V is 8 or 1");
    f[0] = ToF(*p);
  }
}

template <int V>
__device__ __forceinline__ void Store(Bf16* p, const float (&f)[V]) {
  if constexpr (V == 8) {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = static_cast<uint32_t>(ToB(f[2 * i])) | (static_cast<uint32_t>(ToB(f[2 * i + 1])) << 16);
    *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
  } else {
    static_assert(V == 1, "V is 8 or 1");
    *p = ToB(f[0]);
  }
}

// fp32: V = 8 is two 16-byte accesses (p 16-byte aligned).
template <int V>
__device__ __forceinline__ void Load(const float* p, float (&f)[V]) {
  if constexpr (V == 8) {
    const float4 a = reinterpret_cast<const float4*>(p)[0];
    const float4 b = reinterpret_cast<const float4*>(p)[1];
    f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w;
    f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
  } else {
    static_assert(V == 1, "V is 8 or 1");
    f[0] = *p;
  }
}

template <int V>
__device__ __forceinline__ void Store(float* p, const float (&f)[V]) {
  if constexpr (V == 8) {
    reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
  } else {
    static_assert(V == 1, "V is 8 or 1");
    *p = f[0];
  }
}

// The V values of x at `offset`, as fp32. With kAdd, x is first written as
// bf16(a + b) (exactly what Add stores), so a fused add + norm reads the bits
// the unfused sequence would.
template <int V, bool kAdd>
__device__ __forceinline__ void LoadSum(const Bf16* a, const Bf16* b, Bf16* x, int64_t offset, float (&f)[V]) {
  if constexpr (kAdd) {
    float fb[V];
    Load<V>(a + offset, f);
    Load<V>(b + offset, fb);
#pragma unroll
    for (int i = 0; i < V; ++i) f[i] = ToF(ToB(f[i] + fb[i]));
    Store<V>(x + offset, f);
  } else {
    Load<V>(x + offset, f);
  }
}

// Butterfly sum over the 32 lanes of a full warp: every lane ends with the same
// bits (each step adds the same two values, in either order, and fp addition
// is commutative), and the order depends on nothing but the lane layout.
template <typename T>
__device__ __forceinline__ T WarpSum(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to
// every thread; `scratch` holds 32 values. Warps are added in warp order.
// Begins with __syncthreads (scratch may still be read by the previous call),
// so calls may follow each other with the same scratch.
template <typename T>
__device__ __forceinline__ T BlockSum(T v, T* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  v = WarpSum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = T(0);
  for (int w = 0; w < warps; ++w) total += scratch[w];  // same order in every thread
  return total;
}

// ---- Elementwise maps: out[i] = op(a[i], b[i]) in fp32 (b may be null: op(a[i], 0)).
// out may alias a or b: each element is read and written by the same thread.
template <int V, bool kBinary, typename TA, typename TB, typename TO, typename Op>
__global__ void MapKernel(const TA* a, const TB* b, TO* out, int64_t n, Op op) {
  const int64_t units = n / V;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t u = first; u < units; u += stride) {
    float fa[V], fb[V], fo[V];
    Load<V>(a + u * V, fa);
    if constexpr (kBinary) Load<V>(b + u * V, fb);
#pragma unroll
    for (int i = 0; i < V; ++i) fo[i] = op(fa[i], kBinary ? fb[i] : 0.f);
    Store<V>(out + u * V, fo);
  }
  if constexpr (V > 1) {  // the last n % V elements, one per thread
    const int64_t i = units * V + first;
    if (i < n) {
      float fa[1], fb[1] = {0.f}, fo[1];
      Load<1>(a + i, fa);
      if constexpr (kBinary) Load<1>(b + i, fb);
      fo[0] = op(fa[0], fb[0]);
      Store<1>(out + i, fo);
    }
  }
}

template <int V, bool kBinary, typename TA, typename TB, typename TO, typename Op>
void LaunchMapV(const TA* a, const TB* b, TO* out, int64_t n, Op op) {
  const int threads = 256;
  // At least one block, so that the tail (n < V) is covered.
  const int blocks = GridFor(std::max<int64_t>(n / V, 1), threads);
  MapKernel<V, kBinary><<<blocks, threads, 0, ComputeStream()>>>(a, b, out, n, op);
  BATON_CUDA_CHECK_LAUNCH(MapKernel);
}

// 16-byte vectors when every pointer is 16-byte aligned, else scalar.
template <typename TA, typename TB, typename TO, typename Op>
void LaunchMap(const TA* a, const TB* b, TO* out, int64_t n, Op op) {
  if (n <= 0) return;
  const bool vec = Aligned16(a) && Aligned16(out) && (b == nullptr || Aligned16(b));
  if (b != nullptr) {
    if (vec) LaunchMapV<8, true>(a, b, out, n, op);
    else LaunchMapV<1, true>(a, b, out, n, op);
  } else {
    if (vec) LaunchMapV<8, false>(a, b, out, n, op);
    else LaunchMapV<1, false>(a, b, out, n, op);
  }
}

// ---- y[r, :] += table[r % period, :] (bf16, fp32 arithmetic): biases (period 1) and positions.
template <int V, typename I>
__global__ void AddRowsKernel(const Bf16* __restrict__ table, I period, Bf16* __restrict__ y, I rows, I units_per_row) {
  const I total = rows * units_per_row;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I u = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; u < total; u += stride) {
    const I r = u / units_per_row, c = u - r * units_per_row;
    const I p = period == 1 ? I(0) : r % period;
    float fy[V], ft[V];
    Load<V>(y + u * V, fy);
    Load<V>(table + (p * units_per_row + c) * V, ft);
#pragma unroll
    for (int i = 0; i < V; ++i) fy[i] += ft[i];
    Store<V>(y + u * V, fy);
  }
}

template <int V>
void LaunchAddRowsV(const Bf16* table, int64_t period, Bf16* y, int64_t rows, int64_t cols) {
  const int64_t upr = cols / V, total = rows * upr;
  const int threads = 256, blocks = GridFor(total, threads);
  if (rows * cols < (int64_t{1} << 31)) {
    AddRowsKernel<V, uint32_t><<<blocks, threads, 0, ComputeStream()>>>(
        table, static_cast<uint32_t>(period), y, static_cast<uint32_t>(rows), static_cast<uint32_t>(upr));
  } else {
    AddRowsKernel<V, int64_t><<<blocks, threads, 0, ComputeStream()>>>(table, period, y, rows, upr);
  }
  BATON_CUDA_CHECK_LAUNCH(AddRowsKernel);
}

// A template only so that the kernels are instantiated where it is used.
template <typename T = Bf16>
void AddRows(const T* table, int64_t period, T* y, int64_t rows, int64_t cols) {
  static_assert(sizeof(T) == sizeof(Bf16), "bf16 storage");
  if (rows <= 0 || cols <= 0) return;
  if (cols % 8 == 0 && Aligned16(table) && Aligned16(y)) LaunchAddRowsV<8>(table, period, y, rows, cols);
  else LaunchAddRowsV<1>(table, period, y, rows, cols);
}

// ---- Deterministic column sums: grads[k][c] += sum over rows r of f_k(r, c), for K
// quantities at once. Rows are cut into chunks of a size that depends only on the
// shape; block (x, chunk) of 32 x 8 threads sums its chunk for 32 * V columns
// (thread row ty takes rows ty, ty + 8, ...; then the 8 partials are added in ty
// order) into workspace slot 2, and a second kernel adds the chunks' partials in
// chunk order and accumulates into grads. No atomics; the order of every sum is
// fixed by (rows, cols, V).
//
// Fn provides: template <int V> __device__ void Row(int64_t r, int64_t c, float (&v)[K][V]) const,
// the K quantities of row r, columns c .. c + V - 1 (c + V <= cols).
constexpr int kColThreadsY = 8;

struct ColumnPlan {
  int64_t rows_per_chunk, chunks;
};
inline ColumnPlan PlanColumns(int64_t rows) {
  const int64_t per = std::max<int64_t>(64, (rows + 255) / 256);  // at most 256 chunks
  return {per, (rows + per - 1) / per};
}

template <int K, int V, typename Fn>
__global__ void __launch_bounds__(kWarp * kColThreadsY)
    ColumnPartialsKernel(int64_t rows, int64_t cols, int64_t rows_per_chunk, float* __restrict__ partials, Fn fn) {
  __shared__ float scratch[kColThreadsY][K][kWarp * V];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = (static_cast<int64_t>(blockIdx.x) * kWarp + tx) * V;
  const int64_t chunk = blockIdx.y, chunks = gridDim.y;
  const int64_t r0 = chunk * rows_per_chunk;
  const int64_t r1 = rows < r0 + rows_per_chunk ? rows : r0 + rows_per_chunk;
  float acc[K][V];
#pragma unroll
  for (int k = 0; k < K; ++k)
#pragma unroll
    for (int i = 0; i < V; ++i) acc[k][i] = 0.f;
  if (c < cols) {
    for (int64_t r = r0 + ty; r < r1; r += kColThreadsY) {
      float v[K][V];
      fn.template Row<V>(r, c, v);
#pragma unroll
      for (int k = 0; k < K; ++k)
#pragma unroll
        for (int i = 0; i < V; ++i) acc[k][i] += v[k][i];
    }
  }
#pragma unroll
  for (int k = 0; k < K; ++k)
#pragma unroll
    for (int i = 0; i < V; ++i) scratch[ty][k][tx * V + i] = acc[k][i];
  __syncthreads();
  // Thread (tx, ty) finishes columns j = ty * 32 + tx, ty * 32 + tx + 256, ... of the block's 32 * V.
  for (int j = ty * kWarp + tx; j < kWarp * V; j += kWarp * kColThreadsY) {
    const int64_t col = static_cast<int64_t>(blockIdx.x) * kWarp * V + j;
    if (col >= cols) continue;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      float s = 0.f;
      for (int y = 0; y < kColThreadsY; ++y) s += scratch[y][k][j];
      partials[(k * chunks + chunk) * cols + col] = s;
    }
  }
}

template <int K>
struct GradPointers {
  float* p[K];
};

template <int K>
__global__ void ColumnFinishKernel(const float* __restrict__ partials, int64_t chunks, int64_t cols,
                                   GradPointers<K> grads) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    float s = 0.f;
    for (int64_t ch = 0; ch < chunks; ++ch) s += partials[(k * chunks + ch) * cols + c];
    grads.p[k][c] += s;
  }
}

// vec: Fn may be called with V = 8 (cols % 8 == 0 and its pointers 16-byte aligned).
template <int K, typename Fn>
void ColumnSums(int64_t rows, int64_t cols, bool vec, const Fn& fn, GradPointers<K> grads) {
  if (rows <= 0 || cols <= 0) return;
  const ColumnPlan plan = PlanColumns(rows);
  float* partials = static_cast<float*>(
      Workspace(static_cast<size_t>(K) * static_cast<size_t>(plan.chunks) * static_cast<size_t>(cols) * sizeof(float), 2));
  const dim3 block(kWarp, kColThreadsY);
  if (vec) {
    const dim3 grid(static_cast<unsigned>((cols + kWarp * 8 - 1) / (kWarp * 8)), static_cast<unsigned>(plan.chunks));
    ColumnPartialsKernel<K, 8><<<grid, block, 0, ComputeStream()>>>(rows, cols, plan.rows_per_chunk, partials, fn);
  } else {
    const dim3 grid(static_cast<unsigned>((cols + kWarp - 1) / kWarp), static_cast<unsigned>(plan.chunks));
    ColumnPartialsKernel<K, 1><<<grid, block, 0, ComputeStream()>>>(rows, cols, plan.rows_per_chunk, partials, fn);
  }
  BATON_CUDA_CHECK_LAUNCH(ColumnPartialsKernel);
  const int threads = 256;
  ColumnFinishKernel<K><<<static_cast<unsigned>((cols + threads - 1) / threads), threads, 0, ComputeStream()>>>(
      partials, plan.chunks, cols, grads);
  BATON_CUDA_CHECK_LAUNCH(ColumnFinishKernel);
}

}  // namespace baton::cuda::detail
