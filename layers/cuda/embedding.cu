// Token and learned-position embeddings: gathers forward; backward as ordered
// sums without atomics.
//
// EmbeddingBackward: the (id, row) pairs are sorted by id with CUB's radix sort
// (stable, so equal ids keep their rows in ascending order); each run of equal
// ids is then summed in fp32, rows in ascending order, in segments cut at the
// sorted positions 32k (one warp per segment and 32 * V columns, so that a
// frequent id does not serialise), the segments added in order by the warp at
// the run's head, which adds the total once into grad_table[id]. Every
// grad_table row is written by one warp lane per column, and the order of
// every sum depends only on the ids.
#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <string>

#include "layers/cuda/kernels.h"
#include "layers/cuda/op_utils.cuh"
#include "runtime/cuda_device.h"

namespace baton::cuda {
namespace {

using detail::kWarp;
constexpr int kBatch = 4;     // rows (or partials) whose loads one warp keeps in flight
constexpr int kSegment = 32;  // runs are cut into segments at positions 32k (kSegment == kWarp)

// ---- Forward: out[r, :] = table[ids[r], :], copied in units U of sizeof(U) / 2 elements.
template <typename U>
__global__ void GatherRowsKernel(const int32_t* __restrict__ ids, const U* __restrict__ table, U* __restrict__ out,
                                 int64_t rows, int64_t units_per_row) {
  const int64_t total = rows * units_per_row;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < total; u += stride) {
    const int64_t r = u / units_per_row, c = u - r * units_per_row;
    out[u] = table[static_cast<int64_t>(ids[r]) * units_per_row + c];
  }
}

template <typename U>
void LaunchGather(const int32_t* ids, const Bf16* table, Bf16* out, int64_t rows, int64_t cols) {
  const int64_t upr = cols / static_cast<int64_t>(sizeof(U) / sizeof(Bf16));
  const int threads = 256;
  GatherRowsKernel<U><<<detail::GridFor(rows * upr, threads), threads, 0, ComputeStream()>>>(
      ids, reinterpret_cast<const U*>(table), reinterpret_cast<U*>(out), rows, upr);
  BATON_CUDA_CHECK_LAUNCH(GatherRowsKernel);
}

// ---- Backward.
__global__ void IotaKernel(int32_t* v, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) v[i] = static_cast<int32_t>(i);
}

// Adds, in position order, the dy rows at sorted positions [first, limit) that hold
// `id` (limit - first <= 32; the run is contiguous, so they are a prefix) into acc.
// The loads of kBatch rows are in flight together; the adds keep the order.
template <int V>
__device__ __forceinline__ void AddSegment(const int32_t* __restrict__ sorted_ids,
                                           const int32_t* __restrict__ sorted_rows, const Bf16* __restrict__ dy,
                                           int64_t cols, int64_t c, bool active, int32_t id, int64_t first,
                                           int64_t limit, float (&acc)[V]) {
  const int lane = threadIdx.x % kWarp;
  const int64_t j = first + lane;
  const bool in_run = j < limit && sorted_ids[j] == id;
  const int32_t my_row = in_run ? sorted_rows[j] : 0;
  const unsigned ballot = __ballot_sync(0xffffffffu, in_run);
  const int count = ballot == 0xffffffffu ? kWarp : __ffs(~ballot) - 1;
  for (int t0 = 0; t0 < count; t0 += kBatch) {
    int32_t row[kBatch];
#pragma unroll
    for (int q = 0; q < kBatch; ++q) row[q] = __shfl_sync(0xffffffffu, my_row, (t0 + q) % kWarp);
    float v[kBatch][V];
#pragma unroll
    for (int q = 0; q < kBatch; ++q)
      if (active && t0 + q < count) detail::Load<V>(dy + static_cast<int64_t>(row[q]) * cols + c, v[q]);
#pragma unroll
    for (int q = 0; q < kBatch; ++q)
      if (active && t0 + q < count)
#pragma unroll
        for (int e = 0; e < V; ++e) acc[e] += v[q][e];
  }
}

// Runs are cut at the grid points g = 32k. Segment k = the run positions in
// [32k, 32k + 32) that belong to the run containing 32k, when 32k is not a run's
// head: one warp per (k, column slice) sums it into partials[k].
template <int V>
__global__ void __launch_bounds__(256)
    SegmentsKernel(const int32_t* __restrict__ sorted_ids, const int32_t* __restrict__ sorted_rows,
                   const Bf16* __restrict__ dy, float* __restrict__ partials, int64_t rows, int64_t cols,
                   int64_t slices, int64_t grid_points) {
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (warp >= grid_points * slices) return;  // whole warps leave together
  const int64_t k = warp / slices, slice = warp - k * slices, g = k * kSegment;
  if (g == 0) return;
  const int32_t id = sorted_ids[g];
  if (sorted_ids[g - 1] != id) return;  // a run's head: its warp in RunsKernel sums this segment
  const int64_t c = (slice * kWarp + lane) * V;
  const bool active = c < cols;
  float acc[V];
#pragma unroll
  for (int e = 0; e < V; ++e) acc[e] = 0.f;
  AddSegment<V>(sorted_ids, sorted_rows, dy, cols, c, active, id, g, g + kSegment < rows ? g + kSegment : rows, acc);
  if (active) detail::Store<V>(partials + k * cols + c, acc);
}

// One warp per (sorted position i, column slice); only the warp at the head of a
// run works. It sums the run's rows up to the next grid point itself, then adds
// the partials of the run's later segments in order, then adds the total once
// into grad_table[id].
template <int V>
__global__ void __launch_bounds__(256)
    RunsKernel(const int32_t* __restrict__ sorted_ids, const int32_t* __restrict__ sorted_rows,
               const Bf16* __restrict__ dy, const float* __restrict__ partials, float* __restrict__ grad,
               int64_t rows, int64_t cols, int64_t slices) {
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (warp >= rows * slices) return;
  const int64_t i = warp / slices, slice = warp - i * slices;
  const int32_t id = sorted_ids[i];
  if (i > 0 && sorted_ids[i - 1] == id) return;  // not the head of its run
  const int64_t c = (slice * kWarp + lane) * V;
  const bool active = c < cols;
  float acc[V];
#pragma unroll
  for (int e = 0; e < V; ++e) acc[e] = 0.f;
  const int64_t next = (i / kSegment + 1) * kSegment;  // the first grid point after i
  AddSegment<V>(sorted_ids, sorted_rows, dy, cols, c, active, id, i, next < rows ? next : rows, acc);
  // Grid points inside the run, 32 at a time (lane l looks at one); they are a prefix.
  for (int64_t g0 = next; g0 < rows; g0 += int64_t{kWarp} * kSegment) {
    const int64_t g = g0 + int64_t{lane} * kSegment;
    const bool in_run = g < rows && sorted_ids[g] == id;
    const unsigned ballot = __ballot_sync(0xffffffffu, in_run);
    const int count = ballot == 0xffffffffu ? kWarp : __ffs(~ballot) - 1;
    const int64_t k0 = g0 / kSegment;
    for (int t0 = 0; t0 < count; t0 += kBatch) {
      float v[kBatch][V];
#pragma unroll
      for (int q = 0; q < kBatch; ++q)
        if (active && t0 + q < count) detail::Load<V>(partials + (k0 + t0 + q) * cols + c, v[q]);
#pragma unroll
      for (int q = 0; q < kBatch; ++q)
        if (active && t0 + q < count)
#pragma unroll
          for (int e = 0; e < V; ++e) acc[e] += v[q][e];
    }
    if (count < kWarp) break;
  }
  if (active) {
    float* gp = grad + static_cast<int64_t>(id) * cols + c;
    float gv[V];
    detail::Load<V>(gp, gv);
#pragma unroll
    for (int e = 0; e < V; ++e) gv[e] += acc[e];
    detail::Store<V>(gp, gv);
  }
}

// ---- Positions backward: grad[p, c] += sum over b (in order) of dy[b * seq_len + p, c].
template <int V>
__global__ void PositionsBackwardKernel(const Bf16* __restrict__ dy, int64_t seq_len, float* __restrict__ grad,
                                        int64_t batch, int64_t cols) {
  const int64_t upr = cols / V, total = seq_len * upr;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < total; u += stride) {
    const int64_t p = u / upr, c = (u - p * upr) * V;
    float acc[V];
#pragma unroll
    for (int e = 0; e < V; ++e) acc[e] = 0.f;
    for (int64_t b = 0; b < batch; ++b) {
      float v[V];
      detail::Load<V>(dy + (b * seq_len + p) * cols + c, v);
#pragma unroll
      for (int e = 0; e < V; ++e) acc[e] += v[e];
    }
    float g[V];
    detail::Load<V>(grad + p * cols + c, g);
#pragma unroll
    for (int e = 0; e < V; ++e) g[e] += acc[e];
    detail::Store<V>(grad + p * cols + c, g);
  }
}

size_t RoundUp256(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

void EmbeddingForward(const int32_t* ids, const Bf16* table, Bf16* out, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  if (cols % 8 == 0 && detail::Aligned16(table) && detail::Aligned16(out)) LaunchGather<uint4>(ids, table, out, rows, cols);
  else LaunchGather<uint16_t>(ids, table, out, rows, cols);
}

void EmbeddingBackward(const int32_t* ids, const Bf16* dy, float* grad_table, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  if (rows > INT_MAX - 2 * kSegment)
    Fail("cuda::EmbeddingBackward", std::to_string(rows) + " rows (at most 2^31 - 65)", __FILE__, __LINE__);
  cudaStream_t stream = ComputeStream();
  const int n = static_cast<int>(rows);
  const bool vec = cols % 8 == 0 && detail::Aligned16(dy) && detail::Aligned16(grad_table);
  const int64_t per_slice = kWarp * (vec ? 8 : 1);
  const int64_t slices = (cols + per_slice - 1) / per_slice;
  const int64_t grid_points = (rows + kSegment - 1) / kSegment;
  size_t sort_bytes = 0;
  BATON_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, ids, static_cast<int32_t*>(nullptr),
                                                   static_cast<const int32_t*>(nullptr),
                                                   static_cast<int32_t*>(nullptr), n, 0, 32, stream));
  // Workspace slot 2: sorted ids, row indices, sorted row indices, segment partials, the sort's storage.
  const size_t array = RoundUp256(static_cast<size_t>(rows) * sizeof(int32_t));
  const size_t partial_bytes = RoundUp256(static_cast<size_t>(grid_points) * static_cast<size_t>(cols) * sizeof(float));
  char* ws = static_cast<char*>(Workspace(3 * array + partial_bytes + RoundUp256(sort_bytes), 2));
  int32_t* sorted_ids = reinterpret_cast<int32_t*>(ws);
  int32_t* row_index = reinterpret_cast<int32_t*>(ws + array);
  int32_t* sorted_rows = reinterpret_cast<int32_t*>(ws + 2 * array);
  float* partials = reinterpret_cast<float*>(ws + 3 * array);
  void* sort_temp = ws + 3 * array + partial_bytes;

  IotaKernel<<<static_cast<unsigned>((rows + 255) / 256), 256, 0, stream>>>(row_index, rows);
  BATON_CUDA_CHECK_LAUNCH(IotaKernel);
  BATON_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sort_temp, sort_bytes, ids, sorted_ids, row_index, sorted_rows, n,
                                                   0, 32, stream));

  const int threads = 256, warps_per_block = threads / kWarp;
  const auto blocks_for = [&](int64_t warps) { return static_cast<unsigned>((warps + warps_per_block - 1) / warps_per_block); };
  if (vec) {
    SegmentsKernel<8><<<blocks_for(grid_points * slices), threads, 0, stream>>>(sorted_ids, sorted_rows, dy, partials,
                                                                                 rows, cols, slices, grid_points);
    BATON_CUDA_CHECK_LAUNCH(SegmentsKernel);
    RunsKernel<8><<<blocks_for(rows * slices), threads, 0, stream>>>(sorted_ids, sorted_rows, dy, partials, grad_table,
                                                                      rows, cols, slices);
  } else {
    SegmentsKernel<1><<<blocks_for(grid_points * slices), threads, 0, stream>>>(sorted_ids, sorted_rows, dy, partials,
                                                                                 rows, cols, slices, grid_points);
    BATON_CUDA_CHECK_LAUNCH(SegmentsKernel);
    RunsKernel<1><<<blocks_for(rows * slices), threads, 0, stream>>>(sorted_ids, sorted_rows, dy, partials, grad_table,
                                                                      rows, cols, slices);
  }
  BATON_CUDA_CHECK_LAUNCH(RunsKernel);
}

void AddPositions(const Bf16* positions, int64_t seq_len, Bf16* y, int64_t rows, int64_t cols) {
  detail::AddRows(positions, seq_len, y, rows, cols);
}

void PositionsBackward(const Bf16* dy, int64_t seq_len, float* grad_positions, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0 || seq_len <= 0) return;
  const int64_t batch = rows / seq_len;
  const int threads = 256;
  if (cols % 8 == 0 && detail::Aligned16(dy) && detail::Aligned16(grad_positions)) {
    PositionsBackwardKernel<8><<<detail::GridFor(seq_len * cols / 8, threads), threads, 0, ComputeStream()>>>(
        dy, seq_len, grad_positions, batch, cols);
  } else {
    PositionsBackwardKernel<1><<<detail::GridFor(seq_len * cols, threads), threads, 0, ComputeStream()>>>(
        dy, seq_len, grad_positions, batch, cols);
  }
  BATON_CUDA_CHECK_LAUNCH(PositionsBackwardKernel);
}

}  // namespace baton::cuda
