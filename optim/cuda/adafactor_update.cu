// AdaFactor's update of one parameter on the GPU (see adafactor_update.h for
// the contract): one launch per stage of adafactor_kernels.cuh, each block
// running the stage's body at its own blockIdx; slices go in grid.y / grid.z,
// at most 65535 per launch.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "optim/cuda/adafactor_kernels.cuh"
#include "optim/cuda/adafactor_update.h"
#include "runtime/cuda_device.h"
#include "runtime/status.h"

namespace baton::cuda {
namespace {

using namespace adafactor;  // NOLINT: the kernel bodies and their constants

constexpr int64_t kMaxGridYZ = 65535;

template <typename T>
__global__ void __launch_bounds__(kThreads) FactoredPartialsKernel(View<T> v, int64_t slice0, double eps1) {
  FactoredPartials(v, blockIdx.x, blockIdx.y, slice0 + blockIdx.z, eps1);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) FinishFactorsKernel(View<T> v, int64_t slice0, double beta2,
                                                                double one_minus_beta2) {
  FinishFactors(v, blockIdx.x, slice0 + blockIdx.y, beta2, one_minus_beta2);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) FactoredSumsKernel(View<T> v, int64_t slice0) {
  FactoredSums(v, blockIdx.x, slice0 + blockIdx.y);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) FullSumsKernel(View<T> v, int64_t slice0, StepScalars k) {
  FullSums(v, blockIdx.x, slice0 + blockIdx.y, k);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) SliceScalarsKernel(View<T> v, int64_t slice0, StepScalars k) {
  SliceScalars(v, slice0 + blockIdx.x, k);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) FactoredApplyKernel(View<T> v, int64_t slice0, StepScalars k) {
  FactoredApply(v, blockIdx.x, gridDim.x, slice0 + blockIdx.y, k);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) FullApplyKernel(View<T> v, int64_t slice0, StepScalars k) {
  FullApply(v, blockIdx.x, gridDim.x, slice0 + blockIdx.y, k);
}

template <typename T>
void Update(const TensorPlan& p, const StepScalars& k) {
  cudaStream_t stream = ComputeStream();
  double* scratch = static_cast<double*>(Workspace(static_cast<size_t>(p.scratch_doubles()) * sizeof(double), 3));
  const View<T> v = MakeView<T>(p, scratch);
  const auto u = [](int64_t b) { return static_cast<unsigned>(b); };
  for (int64_t s0 = 0; s0 < p.slices; s0 += kMaxGridYZ) {
    const unsigned ns = u(std::min<int64_t>(kMaxGridYZ, p.slices - s0));
    if (p.factored) {
      FactoredPartialsKernel<T><<<dim3(u(p.col_tiles), u(p.row_tiles), ns), kThreads, 0, stream>>>(v, s0, k.eps1);
      BATON_CUDA_CHECK_LAUNCH(FactoredPartialsKernel);
      FinishFactorsKernel<T><<<dim3(u(p.finish_blocks), ns), kThreads, 0, stream>>>(v, s0, k.beta2,
                                                                                     k.one_minus_beta2);
      BATON_CUDA_CHECK_LAUNCH(FinishFactorsKernel);
      FactoredSumsKernel<T><<<dim3(u(p.parts), ns), kThreads, 0, stream>>>(v, s0);
      BATON_CUDA_CHECK_LAUNCH(FactoredSumsKernel);
    } else {
      FullSumsKernel<T><<<dim3(u(p.parts), ns), kThreads, 0, stream>>>(v, s0, k);
      BATON_CUDA_CHECK_LAUNCH(FullSumsKernel);
    }
    SliceScalarsKernel<T><<<ns, kThreads, 0, stream>>>(v, s0, k);
    BATON_CUDA_CHECK_LAUNCH(SliceScalarsKernel);
    if (p.factored) {
      FactoredApplyKernel<T><<<dim3(u(p.apply_blocks), ns), kThreads, 0, stream>>>(v, s0, k);
      BATON_CUDA_CHECK_LAUNCH(FactoredApplyKernel);
    } else {
      FullApplyKernel<T><<<dim3(u(p.apply_blocks), ns), kThreads, 0, stream>>>(v, s0, k);
      BATON_CUDA_CHECK_LAUNCH(FullApplyKernel);
    }
  }
}

}  // namespace

void AdafactorUpdateCuda(const AdafactorCudaTensor& t, const AdafactorCudaStep& step) {
  CheckTensor(t, step);
  if (t.slices == 0) return;
  if (t.n * t.m == 0) {  // empty slices: nothing moves; the CPU reports zero statistics
    if (t.stats != nullptr)
      BATON_CUDA_CHECK(
          cudaMemsetAsync(t.stats, 0, static_cast<size_t>(t.slices) * 3 * sizeof(double), ComputeStream()));
    return;
  }
  const TensorPlan p = PlanTensor(t, step);
  const StepScalars k = ScalarsOf(step);
  if (t.dtype == DType::kF64) Update<double>(p, k);
  else Update<float>(p, k);
}

}  // namespace baton::cuda
