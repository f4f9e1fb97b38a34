// AdaFactor's update on the GPU (see adafactor_update.h for the contract).
//
// Kernels, per parameter (grid.y or grid.z walks the slices of a stacked tensor):
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
// butterfly, then warps (and blocks) added in index order; the launch shapes
// depend only on the parameter's shape. No floating-point atomics.
#include "optim/cuda/adafactor_update.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "runtime/cuda_device.h"
#include "runtime/status.h"

namespace baton::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 256;               // every kernel's block size
constexpr int kWarps = kThreads / kWarp;    // 8
constexpr int kTileCols = 128;              // FactoredPartials: columns of a tile (4 per lane)
constexpr int kColsPerLane = kTileCols / kWarp;
constexpr int kChunkRows = 32;              // FactoredPartials: rows per pass over a tile (4 per warp)
constexpr int kRowsPerWarp = kChunkRows / kWarps;
constexpr int kSegCols = 256;               // FactoredSums / FactoredApply: columns of a warp item (8 per lane)
constexpr int64_t kTargetBlocks = 2048;     // enough blocks to fill an H100/H200 a few times over
constexpr int64_t kMaxGridYZ = 65535;

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

// ---- factored --------------------------------------------------------------

// grid (col_tiles, row_tiles, slices). row_part: [slices, col_tiles, n];
// col_part: [slices, row_tiles, m]. tile_rows is a multiple of kChunkRows.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    FactoredPartials(const T* __restrict__ g, int64_t n, int64_t m, int64_t tile_rows, int64_t col_tiles,
                     int64_t row_tiles, int64_t slice0, double eps1, double* __restrict__ row_part,
                     double* __restrict__ col_part) {
  __shared__ double row_sm[kChunkRows];
  __shared__ double col_sm[kWarps][kTileCols];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t ct = blockIdx.x, rt = blockIdx.y, s = slice0 + blockIdx.z;
  const T* gs = g + s * n * m;
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
      row_part[(s * col_tiles + ct) * n + c0 + threadIdx.x] = row_sm[threadIdx.x];
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
      col_part[(s * row_tiles + rt) * m + j] = sum;
    }
  }
}

// grid (ceil((n + m) / kWarps), slices): warp w < n finishes row w, else column w - n.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    FinishFactors(const double* __restrict__ row_part, const double* __restrict__ col_part, int64_t n, int64_t m,
                  int64_t col_tiles, int64_t row_tiles, int64_t slice0, double beta2, double one_minus_beta2,
                  T* __restrict__ row, T* __restrict__ col) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t s = slice0 + blockIdx.y;
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  if (w >= n + m) return;  // uniform across the warp
  const bool is_row = w < n;
  const int64_t idx = is_row ? w : w - n;
  const int64_t parts = is_row ? col_tiles : row_tiles;
  const int64_t stride = is_row ? n : m;
  const double* base = is_row ? row_part + s * col_tiles * n + idx : col_part + s * row_tiles * m + idx;
  double sum = 0;
  for (int64_t p = lane; p < parts; p += kWarp) sum = Add(sum, base[p * stride]);
  sum = WarpSum(sum);
  if (lane == 0) {
    T* f = is_row ? row + s * n + idx : col + s * m + idx;
    *f = static_cast<T>(Add(Mul(beta2, D(*f)), Mul(one_minus_beta2, sum)));
  }
}

// Factored passes over X and G go by warp items: item w of a slice is row
// w / segs, columns [(w % segs) * kSegCols, + kSegCols), segs = ceil(m / kSegCols),
// so that wide matrices still give every warp a share.

// grid (parts, slices); warp items block * kWarps + warp, + parts * kWarps.
// u_part = sum G^2 / (R C) (times sum(R) later: sum U^2), x_part = sum X^2.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    FactoredSums(const T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ row,
                 const T* __restrict__ col, int64_t n, int64_t m, int64_t segs, int64_t parts, int64_t slice0,
                 double* __restrict__ u_part, double* __restrict__ x_part) {
  __shared__ double scratch[kWarps];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t s = slice0 + blockIdx.y, b = blockIdx.x;
  const T* xs = x + s * n * m;
  const T* gs = g + s * n * m;
  const T* rs = row + s * n;
  const T* cs = col + s * m;
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
    u_part[s * parts + b] = su;
    x_part[s * parts + b] = sx;
  }
}

// grid (blocks, slices); one warp item per warp, grid-stride.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    FactoredApply(T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ row, const T* __restrict__ col,
                  T* __restrict__ mom, int64_t n, int64_t m, int64_t segs, int64_t slice0,
                  const double* __restrict__ scalars, double beta1, double one_minus_beta1, double decay) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t s = slice0 + blockIdx.y;
  const double alpha = scalars[s * 3 + 0], denom = scalars[s * 3 + 1], rsum = scalars[s * 3 + 2];
  const bool clip = denom != 1.0;  // u / 1 == u: skip the division (the same bits)
  const int64_t base = s * n * m;
  const T* cs = col + s * m;
  for (int64_t w = static_cast<int64_t>(blockIdx.x) * kWarps + warp; w < n * segs;
       w += static_cast<int64_t>(gridDim.x) * kWarps) {
    const int64_t i = w / segs, j0 = (w - i * segs) * kSegCols;
    const int64_t j_end = min(m, j0 + kSegCols);
    const double r = D(row[s * n + i]);
#pragma unroll
    for (int q = 0; q < kSegCols / kWarp; ++q) {
      const int64_t j = j0 + lane + kWarp * q;
      if (j < j_end) {
        const int64_t k = base + i * m + j;
        const double vhat = Div(Mul(r, D(cs[j])), rsum);
        double step = Div(D(g[k]), Sqrt(vhat));
        if (clip) step = Div(step, denom);
        if (mom) {
          const T mv = static_cast<T>(Add(Mul(beta1, D(mom[k])), Mul(one_minus_beta1, step)));
          mom[k] = mv;
          step = D(mv);  // the stored value, as on the CPU
        }
        const double x0 = D(x[k]);
        x[k] = static_cast<T>(Sub(Sub(x0, Mul(alpha, step)), Mul(decay, x0)));
      }
    }
  }
}

// ---- unfactored -------------------------------------------------------------

// grid (parts, slices); flat grid-stride loop over each slice's nm elements.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    FullSums(const T* __restrict__ x, const T* __restrict__ g, T* __restrict__ v, int64_t nm, int64_t parts,
             int64_t slice0, double beta2, double one_minus_beta2, double eps1, double* __restrict__ u_part,
             double* __restrict__ x_part) {
  __shared__ double scratch[kWarps];
  const int64_t s = slice0 + blockIdx.y, b = blockIdx.x;
  const int64_t base = s * nm;
  double su = 0, sx = 0;
  for (int64_t k = b * kThreads + threadIdx.x; k < nm; k += parts * kThreads) {
    const double gv = D(g[base + k]);
    const double g2 = Add(Mul(gv, gv), eps1);
    const T vn = static_cast<T>(Add(Mul(beta2, D(v[base + k])), Mul(one_minus_beta2, g2)));
    v[base + k] = vn;
    const double u = Div(gv, Sqrt(D(vn)));  // from the stored (rounded) V, as on the CPU
    su = Add(su, Mul(u, u));
    const double xv = D(x[base + k]);
    sx = Add(sx, Mul(xv, xv));
  }
  su = BlockSum(su, scratch);
  sx = BlockSum(sx, scratch);
  if (threadIdx.x == 0) {
    u_part[s * parts + b] = su;
    x_part[s * parts + b] = sx;
  }
}

// grid (blocks, slices); flat grid-stride loop.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    FullApply(T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ v, T* __restrict__ mom, int64_t nm,
              int64_t slice0, const double* __restrict__ scalars, double beta1, double one_minus_beta1,
              double decay) {
  const int64_t s = slice0 + blockIdx.y;
  const double alpha = scalars[s * 3 + 0], denom = scalars[s * 3 + 1];
  const bool clip = denom != 1.0;  // u / 1 == u: skip the division (the same bits)
  const int64_t base = s * nm;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; k < nm;
       k += static_cast<int64_t>(gridDim.x) * kThreads) {
    double step = Div(D(g[base + k]), Sqrt(D(v[base + k])));
    if (clip) step = Div(step, denom);
    if (mom) {
      const T mv = static_cast<T>(Add(Mul(beta1, D(mom[base + k])), Mul(one_minus_beta1, step)));
      mom[base + k] = mv;
      step = D(mv);
    }
    const double x0 = D(x[base + k]);
    x[base + k] = static_cast<T>(Sub(Sub(x0, Mul(alpha, step)), Mul(decay, x0)));
  }
}

// ---- per-slice scalars ------------------------------------------------------

// grid (slices). row: R when factored (sum(R) is taken here), else null.
// scalars[s] = {alpha, clipping divisor, sum(R)}; stats[s] = {alpha, RMS(U), RMS(X)}.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    SliceScalars(const double* __restrict__ u_part, const double* __restrict__ x_part, int64_t parts,
                 const T* __restrict__ row, int64_t n, int64_t nm, int64_t slice0, double eps2, double rate,
                 bool scale_parameter, double clip_threshold, double* __restrict__ scalars,
                 double* __restrict__ stats) {
  __shared__ double scratch[kWarps];
  const int64_t s = slice0 + blockIdx.x;
  double su = 0, sx = 0, rsum = 0;
  for (int64_t p = threadIdx.x; p < parts; p += kThreads) {
    su = Add(su, u_part[s * parts + p]);
    sx = Add(sx, x_part[s * parts + p]);
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
  const double alpha = scale_parameter ? Mul(fmax(eps2, param_rms), rate) : rate;
  const double update_rms = Sqrt(Div(su, count));
  const double denom = clip_threshold > 0 ? fmax(1.0, Div(update_rms, clip_threshold)) : 1.0;
  scalars[s * 3 + 0] = alpha;
  scalars[s * 3 + 1] = denom;
  scalars[s * 3 + 2] = rsum;
  if (stats != nullptr) {
    stats[s * 3 + 0] = alpha;
    stats[s * 3 + 1] = update_rms;
    stats[s * 3 + 2] = param_rms;
  }
}

// ---- launch -----------------------------------------------------------------

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks per slice for the reduction passes: enough to fill the GPU with all
// slices together, at least `min_items` elements per thread's share.
int64_t PartsPerSlice(int64_t slices, int64_t work_items, int64_t items_per_block) {
  const int64_t cap = std::max<int64_t>(1, kTargetBlocks / slices);
  return std::max<int64_t>(1, std::min(cap, CeilDiv(work_items, items_per_block)));
}

template <typename T>
void Update(const AdafactorCudaArgs& a) {
  const int64_t S = a.slices, n = a.n, m = a.m, nm = n * m;
  cudaStream_t stream = ComputeStream();
  T* x = static_cast<T*>(a.x);
  const T* g = static_cast<const T*>(a.g);
  T* mom = a.beta1 > 0 ? static_cast<T*>(a.momentum) : nullptr;
  const double one_minus_beta2 = 1.0 - a.beta2, one_minus_beta1 = 1.0 - a.beta1;
  const double decay = a.weight_decay * a.rate;

  // Scratch layout (doubles): [row_part][col_part] u_part x_part scalars.
  int64_t col_tiles = 0, row_tiles = 0, tile_rows = 0;
  if (a.factored) {
    col_tiles = CeilDiv(m, kTileCols);
    // Row tiles: enough blocks in all, each tile a whole number of chunks.
    const int64_t want = std::clamp<int64_t>(CeilDiv(kTargetBlocks, col_tiles * S), 1, CeilDiv(n, kChunkRows));
    tile_rows = CeilDiv(CeilDiv(n, want), kChunkRows) * kChunkRows;
    row_tiles = CeilDiv(n, tile_rows);
  }
  const int64_t segs = CeilDiv(m, kSegCols);  // factored warp items per row
  // Reduction blocks per slice: about 2 warp items per warp (factored), 16 elements per thread (full).
  const int64_t parts = a.factored ? PartsPerSlice(S, n * segs, kWarps * 2) : PartsPerSlice(S, nm, kThreads * 16);
  const int64_t row_part_n = S * col_tiles * n, col_part_n = S * row_tiles * m;
  const int64_t total = row_part_n + col_part_n + 2 * S * parts + 3 * S;
  double* scratch = static_cast<double*>(Workspace(static_cast<size_t>(total) * sizeof(double), 3));
  double* row_part = scratch;
  double* col_part = row_part + row_part_n;
  double* u_part = col_part + col_part_n;
  double* x_part = u_part + S * parts;
  double* scalars = x_part + S * parts;

  // Slices go in grid.y / grid.z, at most 65535 at a time.
  for (int64_t s0 = 0; s0 < S; s0 += kMaxGridYZ) {
    const unsigned ns = static_cast<unsigned>(std::min<int64_t>(kMaxGridYZ, S - s0));
    if (a.factored) {
      T* row = static_cast<T*>(a.row);
      T* col = static_cast<T*>(a.col);
      FactoredPartials<T><<<dim3(static_cast<unsigned>(col_tiles), static_cast<unsigned>(row_tiles), ns), kThreads,
                            0, stream>>>(g, n, m, tile_rows, col_tiles, row_tiles, s0, a.eps1, row_part, col_part);
      BATON_CUDA_CHECK_LAUNCH(FactoredPartials);
      FinishFactors<T><<<dim3(static_cast<unsigned>(CeilDiv(n + m, kWarps)), ns), kThreads, 0, stream>>>(
          row_part, col_part, n, m, col_tiles, row_tiles, s0, a.beta2, one_minus_beta2, row, col);
      BATON_CUDA_CHECK_LAUNCH(FinishFactors);
      FactoredSums<T><<<dim3(static_cast<unsigned>(parts), ns), kThreads, 0, stream>>>(x, g, row, col, n, m, segs,
                                                                                       parts, s0, u_part, x_part);
      BATON_CUDA_CHECK_LAUNCH(FactoredSums);
      SliceScalars<T><<<ns, kThreads, 0, stream>>>(u_part, x_part, parts, row, n, nm, s0, a.eps2, a.rate,
                                                   a.scale_parameter, a.clip_threshold, scalars, a.stats);
      BATON_CUDA_CHECK_LAUNCH(SliceScalars);
      const int64_t blocks = std::min<int64_t>(CeilDiv(n * segs, kWarps), int64_t{1} << 20);
      FactoredApply<T><<<dim3(static_cast<unsigned>(blocks), ns), kThreads, 0, stream>>>(
          x, g, row, col, mom, n, m, segs, s0, scalars, a.beta1, one_minus_beta1, decay);
      BATON_CUDA_CHECK_LAUNCH(FactoredApply);
    } else {
      T* v = static_cast<T*>(a.full);
      FullSums<T><<<dim3(static_cast<unsigned>(parts), ns), kThreads, 0, stream>>>(
          x, g, v, nm, parts, s0, a.beta2, one_minus_beta2, a.eps1, u_part, x_part);
      BATON_CUDA_CHECK_LAUNCH(FullSums);
      SliceScalars<T><<<ns, kThreads, 0, stream>>>(u_part, x_part, parts, static_cast<const T*>(nullptr), n, nm, s0,
                                                   a.eps2, a.rate, a.scale_parameter, a.clip_threshold, scalars,
                                                   a.stats);
      BATON_CUDA_CHECK_LAUNCH(SliceScalars);
      const int64_t blocks = std::min<int64_t>(CeilDiv(nm, kThreads), int64_t{1} << 20);
      FullApply<T><<<dim3(static_cast<unsigned>(blocks), ns), kThreads, 0, stream>>>(
          x, g, v, mom, nm, s0, scalars, a.beta1, one_minus_beta1, decay);
      BATON_CUDA_CHECK_LAUNCH(FullApply);
    }
  }
}

}  // namespace

void AdafactorUpdateCuda(const AdafactorCudaArgs& a) {
  BATON_CHECK(a.dtype == DType::kF32 || a.dtype == DType::kF64,
              "adafactor on the GPU updates f32 or f64 parameters, not " << DTypeName(a.dtype));
  BATON_CHECK(a.slices >= 0 && a.n >= 0 && a.m >= 0, "adafactor: bad layout");
  BATON_CHECK(a.beta1 <= 0 || a.momentum != nullptr, "adafactor: beta1 > 0 needs a momentum buffer");
  BATON_CHECK(a.factored ? (a.row != nullptr && a.col != nullptr) : a.full != nullptr,
              "adafactor: missing state buffer");
  if (a.slices == 0) return;
  if (a.n * a.m == 0) {  // empty slices: nothing moves; the CPU reports zero statistics
    if (a.stats != nullptr)
      BATON_CUDA_CHECK(
          cudaMemsetAsync(a.stats, 0, static_cast<size_t>(a.slices) * 3 * sizeof(double), ComputeStream()));
    return;
  }
  if (a.dtype == DType::kF64) Update<double>(a);
  else Update<float>(a);
}

}  // namespace baton::cuda
