// Whole-array reductions returned to the host: sums of squares of several
// arrays (gradient norms) with one synchronisation, and the sum of one array.
//
// Each array is cut into blocks of a size that depends only on its length; a
// block's thread t sums, in double, the 8-element units t, t + 256, ... of its
// range (then the range's last n % 8 elements, one per thread), and the
// threads are added by a warp butterfly and then in warp order. The blocks'
// partials (workspace slot 2) are added in block order by one thread per
// array. Unit loads are 16-byte vectors when the array is 16-byte aligned, but
// the assignment of elements to threads, and so every sum, is the same either way.
#include <algorithm>
#include <string>
#include <vector>

#include "layers/cuda/kernels.h"
#include "layers/cuda/op_utils.cuh"
#include "runtime/cuda_device.h"

namespace baton::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kUnit = 8;                      // elements per unit
constexpr int64_t kElemsPerBlock = 1 << 15;   // target range of one block
constexpr int64_t kMaxBlocksPerArray = 1024;
constexpr int kArraysPerLaunch = 64;          // keeps the kernel parameters under 4 KB

// Arrays of one launch, passed by value as a kernel parameter.
struct Batch {
  const void* data[kArraysPerLaunch];
  int64_t n[kArraysPerLaunch];
  int64_t per_block[kArraysPerLaunch];         // elements per block, a multiple of kUnit
  int32_t first_block[kArraysPerLaunch + 1];   // into this launch's blocks; [count] = total
  int32_t is_bf16[kArraysPerLaunch];
  int count = 0;
};

template <int V>
__device__ __forceinline__ void LoadAny(const void* data, bool bf16, int64_t i, float (&f)[V]) {
  if (bf16) detail::Load<V>(static_cast<const Bf16*>(data) + i, f);
  else detail::Load<V>(static_cast<const float*>(data) + i, f);
}

template <bool kSquare>
__global__ void __launch_bounds__(kThreads) PartialsKernel(Batch batch, double* __restrict__ partials) {
  __shared__ double scratch[32];
  const int b = blockIdx.x;
  int a = 0;
  while (a + 1 < batch.count && batch.first_block[a + 1] <= b) ++a;
  const void* data = batch.data[a];
  const bool bf16 = batch.is_bf16[a] != 0;
  const bool vec = detail::Aligned16(data);
  const int64_t begin = static_cast<int64_t>(b - batch.first_block[a]) * batch.per_block[a];
  const int64_t stop = begin + batch.per_block[a];
  const int64_t end = batch.n[a] < stop ? batch.n[a] : stop;
  double acc = 0;
  if (begin < end) {
    const int64_t units = (end - begin) / kUnit;
    for (int64_t u = threadIdx.x; u < units; u += kThreads) {
      float f[kUnit];
      if (vec) {
        LoadAny<kUnit>(data, bf16, begin + u * kUnit, f);
      } else {
#pragma unroll
        for (int i = 0; i < kUnit; ++i) {
          float one[1];
          LoadAny<1>(data, bf16, begin + u * kUnit + i, one);
          f[i] = one[0];
        }
      }
#pragma unroll
      for (int i = 0; i < kUnit; ++i) {
        const double v = f[i];
        acc += kSquare ? v * v : v;
      }
    }
    const int64_t i = begin + units * kUnit + threadIdx.x;  // the range's tail (< kUnit elements)
    if (i < end) {
      float one[1];
      LoadAny<1>(data, bf16, i, one);
      const double v = one[0];
      acc += kSquare ? v * v : v;
    }
  }
  acc = detail::BlockSum(acc, scratch);
  if (threadIdx.x == 0) partials[b] = acc;
}

// out[a] = sum of array a's partials, in block order.
__global__ void FinishKernel(Batch batch, const double* __restrict__ partials, double* __restrict__ out) {
  const int a = blockIdx.x * blockDim.x + threadIdx.x;
  if (a >= batch.count) return;
  double s = 0;
  for (int b = batch.first_block[a]; b < batch.first_block[a + 1]; ++b) s += partials[b];
  out[a] = s;
}

// Reduces arrays[0, count) into out_dev[0, count), kSquare or plain sums.
template <bool kSquare>
void Reduce(const ArrayRef* arrays, int count, double* out_host) {
  if (count <= 0) return;
  // Plan every array's blocks first: one workspace request for all partials.
  std::vector<int64_t> blocks(count), per(count);
  int64_t total_blocks = 0;
  for (int i = 0; i < count; ++i) {
    const ArrayRef& r = arrays[i];
    if (r.dtype != DType::kF32 && r.dtype != DType::kBF16)
      Fail("cuda::SumsOfSquares", std::string("array of ") + DTypeName(r.dtype), __FILE__, __LINE__);
    const int64_t n = std::max<int64_t>(r.n, 0);
    int64_t nb = std::clamp<int64_t>((n + kElemsPerBlock - 1) / kElemsPerBlock, 1, kMaxBlocksPerArray);
    const int64_t p = std::max<int64_t>(kUnit, ((n + nb - 1) / nb + kUnit - 1) / kUnit * kUnit);
    nb = std::max<int64_t>(1, (n + p - 1) / p);
    blocks[i] = nb;
    per[i] = p;
    total_blocks += nb;
  }
  const size_t partial_bytes = (static_cast<size_t>(total_blocks) * sizeof(double) + 255) / 256 * 256;
  char* ws = static_cast<char*>(Workspace(partial_bytes + static_cast<size_t>(count) * sizeof(double), 2));
  double* partials = reinterpret_cast<double*>(ws);
  double* out_dev = reinterpret_cast<double*>(ws + partial_bytes);
  cudaStream_t stream = ComputeStream();
  int64_t block_base = 0;
  for (int first = 0; first < count; first += kArraysPerLaunch) {
    Batch batch;
    batch.count = std::min(kArraysPerLaunch, count - first);
    int32_t nb = 0;
    for (int j = 0; j < batch.count; ++j) {
      const ArrayRef& r = arrays[first + j];
      batch.data[j] = r.data;
      batch.n[j] = std::max<int64_t>(r.n, 0);
      batch.per_block[j] = per[first + j];
      batch.is_bf16[j] = r.dtype == DType::kBF16;
      batch.first_block[j] = nb;
      nb += static_cast<int32_t>(blocks[first + j]);
    }
    batch.first_block[batch.count] = nb;
    PartialsKernel<kSquare><<<nb, kThreads, 0, stream>>>(batch, partials + block_base);
    BATON_CUDA_CHECK_LAUNCH(PartialsKernel);
    FinishKernel<<<1, kArraysPerLaunch, 0, stream>>>(batch, partials + block_base, out_dev + first);
    BATON_CUDA_CHECK_LAUNCH(FinishKernel);
    block_base += nb;
  }
  BATON_CUDA_CHECK(cudaMemcpyAsync(out_host, out_dev, static_cast<size_t>(count) * sizeof(double),
                                   cudaMemcpyDeviceToHost, stream));
  BATON_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace

void SumsOfSquares(const ArrayRef* arrays, int count, double* out_host) { Reduce<true>(arrays, count, out_host); }

double Sum(const float* x, int64_t n) {
  const ArrayRef one{x, n, DType::kF32};
  double out = 0;
  Reduce<false>(&one, 1, &out);
  return out;
}

}  // namespace baton::cuda
