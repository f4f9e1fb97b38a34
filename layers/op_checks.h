// Internal to layers/ops*.cc: the checks every op makes and the dispatch to
// the CPU or CUDA kernel of a tensor's device. Not for use outside layers/.
#pragma once

#include <algorithm>

#include "layers/cpu/kernels.h"
#include "layers/cuda/kernels.h"
#include "layers/ops.h"
#include "runtime/op_profile.h"

namespace baton::ops::internal {


inline void CheckSameDevice(const Tensor& a, const Tensor& b, const char* op) {
  BATON_CHECK(a.device() == b.device(), op << ": " << a.Describe() << " and " << b.Describe() << " on different devices");
}
inline void CheckSameType(const Tensor& a, const Tensor& b, const char* op) {
  BATON_CHECK(a.dtype() == b.dtype(), op << ": " << a.Describe() << " and " << b.Describe() << " differ in dtype");
  CheckSameDevice(a, b, op);
}
// `t` holds an accumulation (gradient, statistic) for computations in `like`'s dtype.
inline void CheckAccumulates(const Tensor& t, const Tensor& like, const char* op, const char* what) {
  BATON_CHECK(t.dtype() == AccumulationType(like.dtype()),
              op << ": " << what << " is " << t.Describe() << ", expected " << DTypeName(AccumulationType(like.dtype()))
                 << " for " << DTypeName(like.dtype()) << " inputs");
  CheckSameDevice(t, like, op);
}
inline void CheckShape(const Tensor& t, const Shape& want, const char* op, const char* what) {
  BATON_CHECK(t.shape() == want, op << ": " << what << " is " << t.Describe() << ", expected " << ShapeString(want));
}
inline int64_t Cols(const Tensor& t) { return t.rank() == 0 ? 1 : t.dim(-1); }
inline int64_t Rows(const Tensor& t) { return t.numel() / std::max<int64_t>(1, Cols(t)); }

// Runs cpu_fn with T bound to the float type of `t` on the CPU, cuda_fn on a
// GPU. cuda_fn is a generic lambda: in a build without CUDA it is never
// instantiated, so the cuda:: kernels it names need not exist.
template <typename CpuFn, typename CudaFn>
inline void Dispatch(const Tensor& t, const char* op, CpuFn&& cpu_fn, CudaFn&& cuda_fn) {
  OpProfile::Scope profile(op);
  if (t.device().is_cpu()) {
    switch (t.dtype()) {
      case DType::kF32: cpu_fn(float{}); return;
      case DType::kF64: cpu_fn(double{}); return;
      default: BATON_CHECK(false, op << " on the CPU computes in f32 or f64, not " << t.Describe());
    }
  }
#if BATON_CUDA
  cuda_fn(0);
#else
  BATON_CHECK(false, op << " on " << t.device().ToString() << ": " << CudaUnavailableReason());
#endif
}
// For ops whose GPU kernels compute in bf16 only.
inline void RequireBf16(const Tensor& t, const char* op) {
  BATON_CHECK(t.dtype() == DType::kBF16, op << " on the GPU computes in bf16, got " << t.Describe());
}

template <typename T> inline T* P(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
template <typename T> inline T* P(Tensor* t) { return t && t->defined() ? t->data<T>() : nullptr; }
// Device pointers, types checked by the caller.
template <typename T = cuda::Bf16> inline T* D(const Tensor& t) { return t.defined() ? static_cast<T*>(t.raw()) : nullptr; }
template <typename T = cuda::Bf16> inline T* D(Tensor* t) { return t && t->defined() ? static_cast<T*>(t->raw()) : nullptr; }


}  // namespace baton::ops::internal
