// The device side of AdaFactor's GPU update, shared by the per-tensor launches
// (adafactor_update.cu) and the grouped ones (adafactor_group.cu). Every
// kernel stage is a __device__ body that takes a tensor's View and the block's
// coordinates in that tensor's own launch grid; a per-tensor kernel passes
// blockIdx, a grouped kernel first finds which tensor (and which block of it)
// its flat block index stands for. The same body, the same plan (PlanTensor)
// and the same coordinates give the same reduction order, so both paths
// produce the same bits.
//
// Stages, per parameter (s walks the slices of a stacked tensor):
//   factored [n, m] slices:
//     1. FactoredPartials: one pass over G. A block owns a tile of 128 columns
//        x tile_rows rows and writes, per row of the tile, the sum of
//        G^2 + eps1 over its 128 columns (row partials) and, per column, the
//        sum over its rows (column partials).
//     2. FinishFactors: one warp per row (per column) adds that row's
//        (column's) partials in tile order and updates R (C) in place.
//     3. FactoredSums: one pass over G and X: per block, sum of G^2 / (R C)
//        and sum of X^2 (U^2 = G^2 sum(R) / (R C); sum(R) is applied in 4).
//     4. SliceScalars: one block per slice: sum(R), sum X^2, sum U^2 from the
//        block partials -> alpha_t, RMS(U), RMS(X), the clipping divisor.
//     5. FactoredApply: U recomputed from the stored R, C; clipping, momentum,
//        weight decay, X updated.
//   unfactored (full V) slices:
//     3'. FullSums: V updated in place, U from the stored V; per block sum
//         U^2 and sum X^2.
//     4.  SliceScalars.
//     5'. FullApply.
// Every reduction is per thread in a fixed element order, then a warp
// butterfly, then warps (and blocks) added in index order; the plan depends
// only on the parameter's shape. No floating-point atomics.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "optim/cuda/adafactor_update.h"
#include "runtime/status.h"

namespace baton::cuda::adafactor {

constexpr int kWarp = 32;
constexpr int kThreads = 256;               // every kernel's block size
constexpr int kWarps = kThreads / kWarp;    // 8
constexpr int kTileCols = 128;              // FactoredPartials: columns of a tile (4 per lane)
constexpr int kColsPerLane = kTileCols / kWarp;
constexpr int kChunkRows = 32;              // FactoredPartials: rows per pass over a tile (4 per warp)
constexpr int kRowsPerWarp = kChunkRows / kWarps;
constexpr int kSegCols = 256;               // FactoredSums / FactoredApply: columns of a warp item (8 per lane)
constexpr int64_t kTargetBlocks = 2048;     // enough blocks to fill an H100/H200 a few times over
constexpr int64_t kMaxApplyBlocks = int64_t{1} << 20;  // per slice; the apply passes stride beyond

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// How one parameter is cut into blocks, and where its scratch lives: a
// function of (slices, n, m, factored) only. Plain 8-byte fields, so that the
// grouped path can copy it to the device as it is (adafactor_group.cu).
struct TensorPlan {
  // Device pointers, type-erased (the dtype is the launch's template argument).
  void* x = nullptr;
  const void* g = nullptr;
  void* row = nullptr;    // factored only
  void* col = nullptr;    // factored only
  void* full = nullptr;   // unfactored only
  void* mom = nullptr;    // null unless beta1 > 0
  double* stats = nullptr;
  int64_t scratch = 0;    // offset (in doubles) of this tensor's scratch in the launch's scratch buffer
  int64_t slices = 1, n = 1, m = 0, factored = 0;
  int64_t col_tiles = 0, row_tiles = 0, tile_rows = 0;  // FactoredPartials (factored only)
  int64_t segs = 1;           // warp items per row (factored passes)
  int64_t parts = 1;          // reduction blocks per slice (FactoredSums / FullSums)
  int64_t finish_blocks = 0;  // FinishFactors blocks per slice (factored only)
  int64_t apply_blocks = 1;   // FactoredApply / FullApply blocks per slice
  // Scratch (doubles): [row_part S*col_tiles*n][col_part S*row_tiles*m][u_part S*parts][x_part S*parts][scalars 3S]
  int64_t scratch_doubles() const {
    return slices * (col_tiles * n + row_tiles * m + 2 * parts + 3);
  }
};

// Blocks per slice for the reduction passes: enough to fill the GPU with all
// slices together, about `items_per_block` work items per block.
inline int64_t PartsPerSlice(int64_t slices, int64_t work_items, int64_t items_per_block) {
  const int64_t cap = std::max<int64_t>(1, kTargetBlocks / slices);
  return std::max<int64_t>(1, std::min(cap, CeilDiv(work_items, items_per_block)));
}

// Fills the launch-shape fields of `p` from slices, n, m and factored (slices, n, m >= 1).
inline void PlanLaunch(TensorPlan& p) {
  const int64_t S = p.slices, n = p.n, m = p.m;
  p.col_tiles = p.row_tiles = p.tile_rows = p.finish_blocks = 0;
  if (p.factored) {
    p.col_tiles = CeilDiv(m, kTileCols);
    // Row tiles: enough blocks in all, each tile a whole number of chunks.
    const int64_t want = std::clamp<int64_t>(CeilDiv(kTargetBlocks, p.col_tiles * S), 1, CeilDiv(n, kChunkRows));
    p.tile_rows = CeilDiv(CeilDiv(n, want), kChunkRows) * kChunkRows;
    p.row_tiles = CeilDiv(n, p.tile_rows);
    p.finish_blocks = CeilDiv(n + m, kWarps);
  }
  p.segs = CeilDiv(m, kSegCols);
  // Reduction blocks per slice: about 2 warp items per warp (factored), 16 elements per thread (full).
  p.parts = p.factored ? PartsPerSlice(S, n * p.segs, kWarps * 2) : PartsPerSlice(S, n * m, kThreads * 16);
  p.apply_blocks = std::min<int64_t>(p.factored ? CeilDiv(n * p.segs, kWarps) : CeilDiv(n * m, kThreads),
                                     kMaxApplyBlocks);
}

// The scalar inputs of one step, the same for every tensor of a launch.
struct StepScalars {
  double beta2 = 0, one_minus_beta2 = 1;  // beta2_t
  double rate = 0;
  double eps1 = 1e-30, eps2 = 1e-3;
  double clip_threshold = 1.0;
  double beta1 = 0, one_minus_beta1 = 1;
  double decay = 0;  // weight_decay * rate
  bool scale_parameter = true;
};

// Checks a tensor's arguments (AdafactorUpdateCuda's contract).
inline void CheckTensor(const AdafactorCudaTensor& t, const AdafactorCudaStep& step) {
  BATON_CHECK(t.dtype == DType::kF32 || t.dtype == DType::kF64,
              "adafactor on the GPU updates f32 or f64 parameters, not " << DTypeName(t.dtype));
  BATON_CHECK(t.slices >= 0 && t.n >= 0 && t.m >= 0, "adafactor: bad layout");
  // An empty tensor has empty (null) buffers and nothing to update.
  const bool empty = t.slices * t.n * t.m == 0;
  BATON_CHECK(empty || step.beta1 <= 0 || t.momentum != nullptr, "adafactor: beta1 > 0 needs a momentum buffer");
  BATON_CHECK(empty || (t.factored ? (t.row != nullptr && t.col != nullptr) : t.full != nullptr),
              "adafactor: missing state buffer");
}

// The plan of a non-empty tensor (slices, n, m >= 1), scratch at offset 0.
inline TensorPlan PlanTensor(const AdafactorCudaTensor& t, const AdafactorCudaStep& step) {
  TensorPlan p;
  p.x = t.x;
  p.g = t.g;
  p.row = t.factored ? t.row : nullptr;
  p.col = t.factored ? t.col : nullptr;
  p.full = t.factored ? nullptr : t.full;
  p.mom = step.beta1 > 0 ? t.momentum : nullptr;
  p.stats = t.stats;
  p.slices = t.slices;
  p.n = t.n;
  p.m = t.m;
  p.factored = t.factored;
  PlanLaunch(p);
  return p;
}

inline StepScalars ScalarsOf(const AdafactorCudaStep& a) {
  StepScalars k;
  k.beta2 = a.beta2;
  k.one_minus_beta2 = 1.0 - a.beta2;
  k.rate = a.rate;
  k.eps1 = a.eps1;
  k.eps2 = a.eps2;
  k.clip_threshold = a.clip_threshold;
  k.beta1 = a.beta1;
  k.one_minus_beta1 = 1.0 - a.beta1;
  k.decay = a.weight_decay * a.rate;
  k.scale_parameter = a.scale_parameter;
  return k;
}

// A tensor as a kernel body sees it: typed pointers and its scratch.
template <typename T>
struct View {
  T* x;
  const T* g;
  T* row;
  T* col;
  T* full;
  T* mom;
  double* stats;
  double *row_part, *col_part, *u_part, *x_part, *scalars;
  int64_t n, m, col_tiles, row_tiles, tile_rows, segs, parts;
};

template <typename T>
__host__ __device__ inline View<T> MakeView(const TensorPlan& p, double* scratch_base) {
  View<T> v;
  v.x = static_cast<T*>(p.x);
  v.g = static_cast<const T*>(p.g);
  v.row = static_cast<T*>(p.row);
  v.col = static_cast<T*>(p.col);
  v.full = static_cast<T*>(p.full);
  v.mom = static_cast<T*>(p.mom);
  v.stats = p.stats;
  v.row_part = scratch_base + p.scratch;
  v.col_part = v.row_part + p.slices * p.col_tiles * p.n;
  v.u_part = v.col_part + p.slices * p.row_tiles * p.m;
  v.x_part = v.u_part + p.slices * p.parts;
  v.scalars = v.x_part + p.slices * p.parts;
  v.n = p.n;
  v.m = p.m;
  v.col_tiles = p.col_tiles;
  v.row_tiles = p.row_tiles;
  v.tile_rows = p.tile_rows;
  v.segs = p.segs;
  v.parts = p.parts;
  return v;
}

// The CPU's double operations, each rounded to nearest and never contracted
// into an FMA, so that element-wise results match the CPU bit for bit.
__device__ __forceinline__ double Add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double Sub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ double Mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double Div(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ double Sqrt(double a) { return __dsqrt_rn(a); }

// Butterfly sum over a full warp: every lane ends with the same bits, in an
// order fixed by the lane layout.
__device__ __forceinline__ double WarpSum(double v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v = Add(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over a block of kThreads threads, returned to every thread; warps added
// in warp order. `scratch` holds kWarps values; calls may follow each other.
__device__ __forceinline__ double BlockSum(double v, double* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = WarpSum(v);
  __syncthreads();  // the previous call's readers are done with scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < kWarps; ++w) total = Add(total, scratch[w]);
  return total;
}

template <typename T>
__device__ __forceinline__ double D(T v) {
  return static_cast<double>(v);
}

// ---- factored ---------------------------------------------------------------

// Block (ct, rt) of slice s; grid (col_tiles, row_tiles, slices).
// row_part: [slices, col_tiles, n]; col_part: [slices, row_tiles, m].
template <typename T>
__device__ __forceinline__ void FactoredPartials(const View<T>& v, int64_t ct, int64_t rt, int64_t s, double eps1) {
  __shared__ double row_sm[kChunkRows];
  __shared__ double col_sm[kWarps][kTileCols];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t n = v.n, m = v.m, tile_rows = v.tile_rows;
  const T* __restrict__ gs = v.g + s * n * m;
  double* __restrict__ row_part = v.row_part;
  const int64_t j0 = ct * kTileCols + lane;  // this lane's columns: j0 + 32 c
  const int64_t r_begin = rt * tile_rows, r_end = min(n, r_begin + tile_rows);

  double col_acc[kColsPerLane];
#pragma unroll
  for (int c = 0; c < kColsPerLane; ++c) col_acc[c] = 0;

  for (int64_t c0 = r_begin; c0 < r_end; c0 += kChunkRows) {
    // Loads first (kRowsPerWarp x kColsPerLane in flight), then arithmetic.
    T vals[kRowsPerWarp][kColsPerLane];
#pragma unroll
    for (int q = 0; q < kRowsPerWarp; ++q) {
      const int64_t i = c0 + q * kWarps + warp;
#pragma unroll
      for (int c = 0; c < kColsPerLane; ++c) {
        const int64_t j = j0 + kWarp * c;
        vals[q][c] = (i < r_end && j < m) ? gs[i * m + j] : T(0);
      }
    }
#pragma unroll
    for (int q = 0; q < kRowsPerWarp; ++q) {
      const int64_t i = c0 + q * kWarps + warp;
      double row = 0;
#pragma unroll
      for (int c = 0; c < kColsPerLane; ++c) {
        if (i < r_end && j0 + kWarp * c < m) {
          const double gv = D(vals[q][c]);
          const double g2 = Add(Mul(gv, gv), eps1);
          row = Add(row, g2);
          col_acc[c] = Add(col_acc[c], g2);
        }
      }
      row = WarpSum(row);
      if (lane == 0) row_sm[q * kWarps + warp] = row;
    }
    __syncthreads();
    if (threadIdx.x < kChunkRows && c0 + threadIdx.x < r_end)
      row_part[(s * v.col_tiles + ct) * n + c0 + threadIdx.x] = row_sm[threadIdx.x];
    __syncthreads();  // row_sm is rewritten by the next chunk
  }

#pragma unroll
  for (int c = 0; c < kColsPerLane; ++c) col_sm[warp][lane + kWarp * c] = col_acc[c];
  __syncthreads();
  if (threadIdx.x < kTileCols) {
    const int64_t j = ct * kTileCols + threadIdx.x;
    if (j < m) {
      double sum = 0;
      for (int w = 0; w < kWarps; ++w) sum = Add(sum, col_sm[w][threadIdx.x]);
      v.col_part[(s * v.row_tiles + rt) * m + j] = sum;
    }
  }
}

// Block bx of slice s; grid (finish_blocks, slices): warp w < n finishes row w,
// else column w - n. No barrier: warps past the end return at once.
template <typename T>
__device__ __forceinline__ void FinishFactors(const View<T>& v, int64_t bx, int64_t s, double beta2,
                                              double one_minus_beta2) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t n = v.n, m = v.m;
  const int64_t w = bx * kWarps + warp;
  if (w >= n + m) return;  // uniform across the warp
  const bool is_row = w < n;
  const int64_t idx = is_row ? w : w - n;
  const int64_t parts = is_row ? v.col_tiles : v.row_tiles;
  const int64_t stride = is_row ? n : m;
  const double* base = is_row ? v.row_part + s * v.col_tiles * n + idx : v.col_part + s * v.row_tiles * m + idx;
  double sum = 0;
  for (int64_t p = lane; p < parts; p += kWarp) sum = Add(sum, base[p * stride]);
  sum = WarpSum(sum);
  if (lane == 0) {
    T* f = is_row ? v.row + s * n + idx : v.col + s * m + idx;
    *f = static_cast<T>(Add(Mul(beta2, D(*f)), Mul(one_minus_beta2, sum)));
  }
}

// Factored passes over X and G go by warp items: item w of a slice is row
// w / segs, columns [(w % segs) * kSegCols, + kSegCols), segs = ceil(m / kSegCols),
// so that wide matrices still give every warp a share.

// Block b of slice s; grid (parts, slices); warp items b * kWarps + warp, + parts * kWarps.
// u_part = sum G^2 / (R C) (times sum(R) later: sum U^2), x_part = sum X^2.
template <typename T>
__device__ __forceinline__ void FactoredSums(const View<T>& v, int64_t b, int64_t s) {
  __shared__ double scratch[kWarps];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t n = v.n, m = v.m, segs = v.segs, parts = v.parts;
  const T* __restrict__ xs = v.x + s * n * m;
  const T* __restrict__ gs = v.g + s * n * m;
  const T* __restrict__ rs = v.row + s * n;
  const T* __restrict__ cs = v.col + s * m;
  double su = 0, sx = 0;
  for (int64_t w = b * kWarps + warp; w < n * segs; w += parts * kWarps) {
    const int64_t i = w / segs, j0 = (w - i * segs) * kSegCols;
    const int64_t j_end = min(m, j0 + kSegCols);
    const double r = D(rs[i]);
    const T* gi = gs + i * m;
    const T* xi = xs + i * m;
#pragma unroll
    for (int q = 0; q < kSegCols / kWarp; ++q) {
      const int64_t j = j0 + lane + kWarp * q;
      if (j < j_end) {
        const double gv = D(gi[j]), xv = D(xi[j]);
        su = Add(su, Div(Mul(gv, gv), Mul(r, D(cs[j]))));
        sx = Add(sx, Mul(xv, xv));
      }
    }
  }
  su = BlockSum(su, scratch);
  sx = BlockSum(sx, scratch);
  if (threadIdx.x == 0) {
    v.u_part[s * parts + b] = su;
    v.x_part[s * parts + b] = sx;
  }
}

// Block bx of gx of slice s; one warp item per warp, grid-stride.
template <typename T>
__device__ __forceinline__ void FactoredApply(const View<T>& v, int64_t bx, int64_t gx, int64_t s,
                                              const StepScalars& k) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t n = v.n, m = v.m, segs = v.segs;
  const double alpha = v.scalars[s * 3 + 0], denom = v.scalars[s * 3 + 1], rsum = v.scalars[s * 3 + 2];
  const bool clip = denom != 1.0;  // u / 1 == u: skip the division (the same bits)
  const int64_t base = s * n * m;
  T* __restrict__ x = v.x;
  T* __restrict__ mom = v.mom;
  const T* __restrict__ g = v.g;
  const T* __restrict__ cs = v.col + s * m;
  for (int64_t w = bx * kWarps + warp; w < n * segs; w += gx * kWarps) {
    const int64_t i = w / segs, j0 = (w - i * segs) * kSegCols;
    const int64_t j_end = min(m, j0 + kSegCols);
    const double r = D(v.row[s * n + i]);
#pragma unroll
    for (int q = 0; q < kSegCols / kWarp; ++q) {
      const int64_t j = j0 + lane + kWarp * q;
      if (j < j_end) {
        const int64_t e = base + i * m + j;
        const double vhat = Div(Mul(r, D(cs[j])), rsum);
        double step = Div(D(g[e]), Sqrt(vhat));
        if (clip) step = Div(step, denom);
        if (mom) {
          const T mv = static_cast<T>(Add(Mul(k.beta1, D(mom[e])), Mul(k.one_minus_beta1, step)));
          mom[e] = mv;
          step = D(mv);  // the stored value, as on the CPU
        }
        const double x0 = D(x[e]);
        x[e] = static_cast<T>(Sub(Sub(x0, Mul(alpha, step)), Mul(k.decay, x0)));
      }
    }
  }
}

// ---- unfactored -------------------------------------------------------------

// Block b of slice s; grid (parts, slices); flat grid-stride loop over the slice's nm elements.
template <typename T>
__device__ __forceinline__ void FullSums(const View<T>& v, int64_t b, int64_t s, const StepScalars& k) {
  __shared__ double scratch[kWarps];
  const int64_t nm = v.n * v.m, parts = v.parts;
  const int64_t base = s * nm;
  const T* __restrict__ x = v.x;
  const T* __restrict__ g = v.g;
  T* __restrict__ full = v.full;
  double su = 0, sx = 0;
  for (int64_t e = b * kThreads + threadIdx.x; e < nm; e += parts * kThreads) {
    const double gv = D(g[base + e]);
    const double g2 = Add(Mul(gv, gv), k.eps1);
    const T vn = static_cast<T>(Add(Mul(k.beta2, D(full[base + e])), Mul(k.one_minus_beta2, g2)));
    full[base + e] = vn;
    const double u = Div(gv, Sqrt(D(vn)));  // from the stored (rounded) V, as on the CPU
    su = Add(su, Mul(u, u));
    const double xv = D(x[base + e]);
    sx = Add(sx, Mul(xv, xv));
  }
  su = BlockSum(su, scratch);
  sx = BlockSum(sx, scratch);
  if (threadIdx.x == 0) {
    v.u_part[s * parts + b] = su;
    v.x_part[s * parts + b] = sx;
  }
}

// Block bx of gx of slice s; flat grid-stride loop.
template <typename T>
__device__ __forceinline__ void FullApply(const View<T>& v, int64_t bx, int64_t gx, int64_t s,
                                          const StepScalars& k) {
  const int64_t nm = v.n * v.m;
  const double alpha = v.scalars[s * 3 + 0], denom = v.scalars[s * 3 + 1];
  const bool clip = denom != 1.0;  // u / 1 == u: skip the division (the same bits)
  const int64_t base = s * nm;
  T* __restrict__ x = v.x;
  T* __restrict__ mom = v.mom;
  const T* __restrict__ g = v.g;
  const T* __restrict__ full = v.full;
  for (int64_t e = bx * kThreads + threadIdx.x; e < nm; e += gx * kThreads) {
    double step = Div(D(g[base + e]), Sqrt(D(full[base + e])));
    if (clip) step = Div(step, denom);
    if (mom) {
      const T mv = static_cast<T>(Add(Mul(k.beta1, D(mom[base + e])), Mul(k.one_minus_beta1, step)));
      mom[base + e] = mv;
      step = D(mv);
    }
    const double x0 = D(x[base + e]);
    x[base + e] = static_cast<T>(Sub(Sub(x0, Mul(alpha, step)), Mul(k.decay, x0)));
  }
}

// ---- per-slice scalars ------------------------------------------------------

// Slice s; grid (slices). sum(R) is taken here when the tensor is factored (v.row set).
// scalars[s] = {alpha, clipping divisor, sum(R)}; stats[s] = {alpha, RMS(U), RMS(X)}.
template <typename T>
__device__ __forceinline__ void SliceScalars(const View<T>& v, int64_t s, const StepScalars& k) {
  __shared__ double scratch[kWarps];
  const int64_t parts = v.parts, n = v.n, nm = v.n * v.m;
  const T* row = v.row;
  double su = 0, sx = 0, rsum = 0;
  for (int64_t p = threadIdx.x; p < parts; p += kThreads) {
    su = Add(su, v.u_part[s * parts + p]);
    sx = Add(sx, v.x_part[s * parts + p]);
  }
  if (row != nullptr)
    for (int64_t i = threadIdx.x; i < n; i += kThreads) rsum = Add(rsum, D(row[s * n + i]));
  su = BlockSum(su, scratch);
  sx = BlockSum(sx, scratch);
  rsum = BlockSum(rsum, scratch);
  if (threadIdx.x != 0) return;
  if (row != nullptr) su = Mul(su, rsum);  // sum G^2 / (R C) * sum(R) = sum U^2
  const double count = static_cast<double>(nm);
  const double param_rms = Sqrt(Div(sx, count));
  const double alpha = k.scale_parameter ? Mul(fmax(k.eps2, param_rms), k.rate) : k.rate;
  const double update_rms = Sqrt(Div(su, count));
  const double denom = k.clip_threshold > 0 ? fmax(1.0, Div(update_rms, k.clip_threshold)) : 1.0;
  v.scalars[s * 3 + 0] = alpha;
  v.scalars[s * 3 + 1] = denom;
  v.scalars[s * 3 + 2] = rsum;
  if (v.stats != nullptr) {
    v.stats[s * 3 + 0] = alpha;
    v.stats[s * 3 + 1] = update_rms;
    v.stats[s * 3 + 2] = param_rms;
  }
}

}  // namespace baton::cuda::adafactor
