// Building blocks of the fused attention kernels (attention_forward.cu,
// attention_backward.cu): cp.async tile loads, ldmatrix, the bf16 tensor-core
// MMA m16n8k16 (fp32 accumulation) and the mask.
//
// Shared-memory tiles are row-major bf16 with a row stride of head_dim + 8
// elements: the 16-byte pad shifts consecutive rows by 4 banks, so the 8 row
// addresses of each ldmatrix hit 8 different bank groups (no conflicts).
//
// Warp-level fragments (PTX ISA, mma.m16n8k16, g = lane / 4, t = lane % 4):
//   A (16x16): a0 = (row g, cols 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B (16x8):  b0 = (rows 2t..2t+1, col g), b1 = (rows 2t+8..2t+9, col g)
//   C (16x8):  c0, c1 = (row g, cols 2t, 2t+1), c2, c3 = (row g+8, cols 2t, 2t+1)
// A C tile of 16 x N is float[N/8][4]; converted to bf16 it is directly the A
// operand of the next product (FlashAttention's register reuse of P). A warp
// owns MT such row tiles (16 MT rows): every B fragment it loads from shared
// memory then feeds MT MMAs.
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "runtime/cuda_device.h"

namespace baton::cuda::attention {

using bf16 = __nv_bfloat16;

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ uint32_t SmemAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronous; when !valid nothing is read and the
// destination is zero-filled (src must still be a mapped address).
__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(SmemAddress(smem)), "l"(gmem),
               "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void CpAsync4(void* smem, const void* gmem, bool valid) {
  const int src_bytes = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(SmemAddress(smem)), "l"(gmem), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void Ldmatrix4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ __forceinline__ void Ldmatrix4Trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

// c += a * b on tensor cores (16x8x16, bf16 inputs, fp32 accumulators).
__device__ __forceinline__ void Mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a bf16 pair (round to nearest even), `lo` in the low half: the
// lower column of a fragment register.
__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// 2^x (hardware approximation, relative error ~2^-22); 2^-inf = 0.
__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Starts the copy of rows [0, ROWS) x D of a head (global rows `row_stride`
// elements apart) into a padded shared tile; rows >= valid_rows are zero-filled.
// Strides and offsets within one sequence are 32-bit (CheckAttentionArgs bounds
// them): 64-bit ones cost the backward kernels registers they spill.
// `fallback` is any mapped address, used as the source of zero-filled chunks.
template <int ROWS, int D, int THREADS>
__device__ __forceinline__ void LoadTile(bf16* tile, const bf16* src, int row_stride, int valid_rows,
                                         const bf16* fallback) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  constexpr int kPerThread = (ROWS * kChunks + THREADS - 1) / THREADS;
#pragma unroll
  for (int it = 0; it < kPerThread; ++it) {
    const int c = it * THREADS + static_cast<int>(threadIdx.x);
    if (ROWS * kChunks % THREADS != 0 && c >= ROWS * kChunks) break;
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const bool valid = r < valid_rows;
    CpAsync16(tile + r * (D + 8) + col, valid ? src + r * row_stride + col : fallback, valid);
  }
}

// Double buffering over key blocks (the forward and dQ kernels): starts loading
// block kb + 1 of K and V (global rows kg / vg, `len` valid) into the other
// half of sK / sV, then waits until block kb (in half `buf`) has arrived.
template <int BN, int D, int THREADS>
__device__ __forceinline__ void PrefetchNextKeyBlock(bf16* sK, bf16* sV, int buf, int kb, int num_kblocks,
                                                     const bf16* kg, const bf16* vg, int in_stride, int len) {
  constexpr int SD = D + 8;
  if (kb + 1 < num_kblocks) {
    const int n1 = (kb + 1) * BN;
    LoadTile<BN, D, THREADS>(sK + (buf ^ 1) * BN * SD, kg + n1 * in_stride, in_stride, len - n1, kg);
    LoadTile<BN, D, THREADS>(sV + (buf ^ 1) * BN * SD, vg + n1 * in_stride, in_stride, len - n1, vg);
    CpAsyncCommit();
    CpAsyncWait<1>();
  } else {
    CpAsyncWait<0>();
  }
  __syncthreads();
}

// Copies a warp's ROWS x D tile (padded, in shared memory) to global rows, 16
// bytes per store; rows >= valid_rows are not written.
template <int ROWS, int D>
__device__ __forceinline__ void StoreWarpRows(const bf16* tile, bf16* dst, int row_stride, int valid_rows,
                                              int lane) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int c = lane; c < ROWS * kChunks; c += 32) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    if (r < valid_rows)
      *reinterpret_cast<uint4*>(dst + r * row_stride + col) = *reinterpret_cast<const uint4*>(tile + r * (D + 8) + col);
  }
}

// Writes a warp's MT tiles of 16 x N fp32 accumulators, times `scale`, into a
// padded bf16 shared tile of 16 MT rows (row stride SD).
template <int MT, int N, int SD>
__device__ __forceinline__ void AccumulatorToSmem(const float (&acc)[MT][N / 8][4], float scale, bf16* tile,
                                                  int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < N / 8; ++j) {
      bf16* p = tile + (m * 16 + g) * SD + 8 * j + 2 * t;
      *reinterpret_cast<uint32_t*>(p) = PackBf16(acc[m][j][0] * scale, acc[m][j][1] * scale);
      *reinterpret_cast<uint32_t*>(p + 8 * SD) = PackBf16(acc[m][j][2] * scale, acc[m][j][3] * scale);
    }
}

// acc (MT tiles of 16 x N) += A B^T, A: 16 MT x K at `a` (row stride SD), B: N x K
// at `b` (row stride SD), both in shared memory: S = Q K^T and its relatives.
// Each B fragment serves the MT row tiles (MT = 2 halves ldmatrix traffic per MMA).
template <int K, int N, int SD, int MT>
__device__ __forceinline__ void MmaABt(float (&acc)[MT][N / 8][4], const bf16* a, const bf16* b, int lane) {
  // ldmatrix.x4 row addresses: A as four 8x8 blocks (rows 0-7 / 8-15, cols 0-7 / 8-15)
  // in the order a0..a3; B as (rows 0-7, k 0-7), (0-7, 8-15), (8-15, 0-7), (8-15, 8-15)
  // = b0, b1 of n-tile 0 and b0, b1 of n-tile 1.
  const uint32_t a_addr = SmemAddress(a + (lane & 15) * SD + (lane >> 4) * 8);
  const uint32_t b_addr = SmemAddress(b + ((lane & 7) + ((lane >> 4) << 3)) * SD + ((lane >> 3) & 1) * 8);
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    uint32_t af[MT][4];
#pragma unroll
    for (int m = 0; m < MT; ++m) Ldmatrix4(af[m], a_addr + (m * 16 * SD + kk * 16) * 2);
#pragma unroll
    for (int n2 = 0; n2 < N / 16; ++n2) {
      uint32_t bf[4];
      Ldmatrix4(bf, b_addr + (n2 * 16 * SD + kk * 16) * 2);
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        Mma(acc[m][2 * n2], af[m], bf[0], bf[1]);
        Mma(acc[m][2 * n2 + 1], af[m], bf[2], bf[3]);
      }
    }
  }
}

// The bf16 A operand (16 x K) made of a 16 x K fp32 accumulator tile.
template <int K>
__device__ __forceinline__ void AccumulatorToA(const float (&acc)[K / 8][4], uint32_t (&a)[K / 16][4]) {
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    a[kk][0] = PackBf16(acc[2 * kk][0], acc[2 * kk][1]);
    a[kk][1] = PackBf16(acc[2 * kk][2], acc[2 * kk][3]);
    a[kk][2] = PackBf16(acc[2 * kk + 1][0], acc[2 * kk + 1][1]);
    a[kk][3] = PackBf16(acc[2 * kk + 1][2], acc[2 * kk + 1][3]);
  }
}

// acc (MT tiles of 16 x N) += A B, A: bf16 fragments in registers (MT tiles of
// 16 x K), B: K x N at `b` in shared memory (row stride SD), read transposed by
// ldmatrix: O += P V and its relatives.
template <int K, int N, int SD, int MT>
__device__ __forceinline__ void MmaAregB(float (&acc)[MT][N / 8][4], const uint32_t (&a)[MT][K / 16][4],
                                         const bf16* b, int lane) {
  // Blocks (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15), transposed:
  // b0, b1 of n-tile 0 and b0, b1 of n-tile 1.
  const uint32_t b_addr = SmemAddress(b + ((lane & 7) + ((lane >> 3) & 1) * 8) * SD + (lane >> 4) * 8);
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
#pragma unroll
    for (int n2 = 0; n2 < N / 16; ++n2) {
      uint32_t bf[4];
      Ldmatrix4Trans(bf, b_addr + (kk * 16 * SD + n2 * 16) * 2);
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        Mma(acc[m][2 * n2], a[m][kk], bf[0], bf[1]);
        Mma(acc[m][2 * n2 + 1], a[m][kk], bf[2], bf[3]);
      }
    }
  }
}

template <int MT, int N>
__device__ __forceinline__ void Zero(float (&acc)[MT][N][4]) {
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < N; ++j) acc[m][j][0] = acc[m][j][1] = acc[m][j][2] = acc[m][j][3] = 0.f;
}

// The mask of one example, clamped to [0, seq]: key j visible from query i iff
// j < len && (j <= i || j < pre).
struct ExampleMask {
  int len, pre;
  __device__ ExampleMask(int b, int seq, int prefix, const int32_t* prefix_lengths, const int32_t* lengths)
      : len(lengths ? min(max(lengths[b], 0), seq) : seq),
        pre(prefix_lengths ? min(max(prefix_lengths[b], 0), seq) : prefix) {}
  // Bitwise, not short-circuit: a select per element rather than branches.
  __device__ __forceinline__ bool Visible(int i, int j) const { return (j < len) & ((j <= i) | (j < pre)); }
  // Every query i >= q0 sees every key j < k1 (a tile needs no element-wise mask).
  __device__ __forceinline__ bool AllVisible(int q0, int k1) const { return k1 <= len && (k1 - 1 <= q0 || k1 <= pre); }
  // One past the last key any query in [q0, q1) can see.
  __device__ __forceinline__ int KeyEnd(int q1) const { return min(len, max(q1, pre)); }
};

// Host side: what every attention entry point refuses (aborting with the reason).
// `pointers`: where each operand's first head starts (q, k and v inside the packed qkv);
// `row_strides`: the operands' row strides in bf16 elements.
inline void CheckAttentionArgs(const char* op, int64_t head_dim, std::initializer_list<const void*> pointers,
                               std::initializer_list<int64_t> row_strides, int64_t batch, int64_t seq,
                               int64_t heads) {
  if (head_dim != 32 && head_dim != 64 && head_dim != 128)
    Fail(op, "head_dim " + std::to_string(head_dim) + " is not supported (32, 64 or 128)", __FILE__, __LINE__);
  // 16-byte cp.async / vector stores: every row of every head starts 16-byte aligned, which
  // needs each operand's start and its row stride (3 hidden or hidden elements of 2 bytes,
  // so hidden a multiple of 8) aligned; head offsets are multiples of head_dim.
  for (const void* p : pointers)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0)
      Fail(op, "a bf16 operand (q, k or v in qkv, out, dout, or dq, dk or dv in d_qkv) is not 16-byte aligned",
           __FILE__, __LINE__);
  for (int64_t stride : row_strides)
    if (stride * 2 % 16 != 0)
      Fail(op, "a row stride of " + std::to_string(stride) + " bf16 elements is not a multiple of 16 bytes",
           __FILE__, __LINE__);
  // Offsets within a sequence are int: (seq + a tile) rows of the widest operand (qkv).
  int64_t max_stride = 0;
  for (int64_t stride : row_strides) max_stride = std::max(max_stride, stride);
  if (seq > (int64_t{1} << 30) || batch * heads > (int64_t{1} << 30) ||
      batch * heads * ((seq + 15) / 16) > (int64_t{1} << 31) - 1 || (seq + 256) * max_stride > (int64_t{1} << 31) - 1)
    Fail(op, "shape too large (batch " + std::to_string(batch) + ", seq " + std::to_string(seq) + ", heads " +
                 std::to_string(heads) + ", qkv row of " + std::to_string(max_stride) + " elements)",
         __FILE__, __LINE__);
}

}  // namespace baton::cuda::attention
