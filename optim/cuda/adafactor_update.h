// AdaFactor's update on the GPU: the same arithmetic as UpdateTyped in
// optim/adafactor.cc (the CPU reference), for parameters whose value, gradient
// and state all live on this process's GPU. Plain C++ (no CUDA types), so
// optim/adafactor.cc includes it in every build; the definitions exist only
// when BATON_CUDA=ON (optim/cuda/adafactor_update.cu, adafactor_group.cu).
//
// Two entry points with the same results, bit for bit:
//   AdafactorUpdateCuda   one parameter, 3 (unfactored) or 5 (factored) kernel launches;
//   AdafactorCudaGroup    many parameters at once (what Adafactor::Step uses):
//                         every stage of every parameter of a batch in one launch.
// Both share the kernel bodies and the launch plan of
// optim/cuda/adafactor_kernels.cuh; a grouped block runs exactly what the
// per-parameter launch's block with the same coordinates runs.
//
// Everything is enqueued on cuda::ComputeStream() and the calls return without
// waiting for the GPU: the scalars (beta2_t, rate) come in by value and the
// per-slice statistics stay on the device (`stats`), for the host to fetch
// only when it wants them.
//
// Numerics: like the CPU, every sum (sum X^2, the row and column sums of
// G^2 + eps1, sum(R), sum U^2) accumulates in double, and every element-wise
// expression is evaluated in double with the CPU's operations and operand
// order (round-to-nearest intrinsics, no FMA contraction), then rounded once
// to the parameter's type where the CPU rounds. Only the order of the sums
// differs from the CPU's sequential loops, so results agree with the CPU
// within the rounding of the stored (fp32) values. The reductions run in a
// fixed order that depends only on the shape (block partials, then a final
// pass in index order; no floating-point atomics): two runs give the same bits.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/dtype.h"

namespace baton::cuda {

// One parameter and its state, as device pointers.
struct AdafactorCudaTensor {
  DType dtype = DType::kF32;  // of x, g and every state tensor: f32 or f64
  // A parameter is `slices` independent [n, m] slices stored back to back
  // (a vector or scalar: slices = 1, n = 1, m = numel).
  void* x = nullptr;         // parameter, updated in place
  const void* g = nullptr;   // gradient
  void* row = nullptr;       // factored: R, [slices, n]
  void* col = nullptr;       // factored: C, [slices, m]
  void* full = nullptr;      // unfactored: V, [slices, n, m]
  void* momentum = nullptr;  // [slices, n, m]; needed when beta1 > 0, ignored otherwise
  int64_t slices = 1, n = 1, m = 0;
  bool factored = false;
  // Optional device buffer of slices x 3 doubles; receives, per slice, the
  // step size alpha_t, RMS(U) before clipping and RMS(X_{t-1}) (the fields of
  // AdafactorSliceStats, in that order). Null: not written.
  double* stats = nullptr;
};

// The scalar inputs of one step (AdafactorOptions, as validated there, plus beta2_t and the rate).
struct AdafactorCudaStep {
  double beta2 = 0;  // beta2_t = 1 - t^(-decay_exponent)
  double rate = 0;   // rho_t or the scheduled learning rate
  double eps1 = 1e-30, eps2 = 1e-3;
  double clip_threshold = 1.0;  // 0 = no update clipping
  double beta1 = 0.0;           // > 0 needs `momentum`
  double weight_decay = 0.0;
  bool scale_parameter = true;
};

// One AdaFactor update (optim/adafactor.h) of one parameter from its gradient.
// Uses cuda::Workspace slot 3 as scratch. Asynchronous: no host synchronisation.
void AdafactorUpdateCuda(const AdafactorCudaTensor& tensor, const AdafactorCudaStep& step);

// Updates of many parameters at once, with the results of AdafactorUpdateCuda
// on each in turn. Parameters are cut into batches (per dtype, and by the
// scratch they need: up to 64 MiB, or one parameter that needs more); a batch
// costs 5 launches (3 without factored parameters) whatever its size.
//
// The launches read a table of per-parameter plans (pointers, shapes, block
// ranges) kept on the device and reused while the list of tensors (pointers
// and layouts) stays the same; a different list rebuilds it, stream-ordered,
// without waiting for the GPU. The table is a Tensor counted as optimizer
// memory, reallocated only when it has to grow; scratch comes from
// cuda::Workspace slot 3 (as for AdafactorUpdateCuda). So in steady state an
// Update allocates nothing and does not synchronise.
// Not thread-safe; one group per optimizer.
class AdafactorCudaGroup {
 public:
  AdafactorCudaGroup();
  ~AdafactorCudaGroup();
  AdafactorCudaGroup(const AdafactorCudaGroup&) = delete;
  AdafactorCudaGroup& operator=(const AdafactorCudaGroup&) = delete;

  void Update(const std::vector<AdafactorCudaTensor>& tensors, const AdafactorCudaStep& step);

  // Times the device table was (re)built, for tests: 1 after the first Update
  // of an unchanging list.
  int64_t table_builds() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::cuda
