// Bias, residual, accumulation and conversion arithmetic: memory-bound maps
// with 16-byte accesses where the pointers allow (see op_utils.cuh).
#include <string>

#include "layers/cuda/kernels.h"
#include "layers/cuda/op_utils.cuh"
#include "runtime/cuda_device.h"

namespace baton::cuda {
namespace {

struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct AxpyOp {  // (src, dst) -> dst + alpha * src
  float alpha;
  __device__ float operator()(float src, float dst) const { return dst + alpha * src; }
};
struct ScaleOp {
  float factor;
  __device__ float operator()(float x, float) const { return x * factor; }
};
struct IdentityOp {  // conversion happens in Load / Store
  __device__ float operator()(float x, float) const { return x; }
};

}  // namespace

void AddBias(const Bf16* bias, Bf16* y, int64_t rows, int64_t cols) { detail::AddRows(bias, 1, y, rows, cols); }

void Add(const void* a, const void* b, void* out, int64_t n, DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      detail::LaunchMap(static_cast<const Bf16*>(a), static_cast<const Bf16*>(b), static_cast<Bf16*>(out), n, AddOp{});
      return;
    case DType::kF32:
      detail::LaunchMap(static_cast<const float*>(a), static_cast<const float*>(b), static_cast<float*>(out), n,
                        AddOp{});
      return;
    default: Fail("cuda::Add", std::string("unsupported dtype ") + DTypeName(dtype), __FILE__, __LINE__);
  }
}

void Axpy(float alpha, const float* src, float* dst, int64_t n) { detail::LaunchMap(src, dst, dst, n, AxpyOp{alpha}); }

void Scale(float* x, int64_t n, float factor) {
  detail::LaunchMap(x, static_cast<const float*>(nullptr), x, n, ScaleOp{factor});
}

void Convert(const void* src, DType src_type, void* dst, DType dst_type, int64_t n) {
  if (n <= 0) return;
  if (src_type == dst_type) {
    BATON_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * SizeOf(src_type), cudaMemcpyDeviceToDevice,
                                     ComputeStream()));
    return;
  }
  if (src_type == DType::kF32 && dst_type == DType::kBF16) {
    // __float2bfloat16_rn: round to nearest even; NaN stays NaN, overflow goes to inf.
    detail::LaunchMap(static_cast<const float*>(src), static_cast<const float*>(nullptr), static_cast<Bf16*>(dst), n,
                      IdentityOp{});
    return;
  }
  if (src_type == DType::kBF16 && dst_type == DType::kF32) {
    detail::LaunchMap(static_cast<const Bf16*>(src), static_cast<const Bf16*>(nullptr), static_cast<float*>(dst), n,
                      IdentityOp{});
    return;
  }
  Fail("cuda::Convert", std::string("no conversion from ") + DTypeName(src_type) + " to " + DTypeName(dst_type),
       __FILE__, __LINE__);
}

}  // namespace baton::cuda
