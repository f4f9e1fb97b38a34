// AdaFactor's update of one parameter on the GPU: the same arithmetic as
// UpdateTyped in optim/adafactor.cc (the CPU reference), for a parameter whose
// value, gradient and state all live on this process's GPU. Plain C++ (no CUDA
// types), so optim/adafactor.cc includes it in every build; the definition
// exists only when BATON_CUDA=ON (optim/cuda/adafactor_update.cu).
//
// Everything is enqueued on cuda::ComputeStream() and the call returns without
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

#include "runtime/dtype.h"

namespace baton::cuda {

struct AdafactorCudaArgs {
  DType dtype = DType::kF32;  // of x, g and every state tensor: f32 or f64
  // Device pointers. A parameter is `slices` independent [n, m] slices stored
  // back to back (a vector or scalar: slices = 1, n = 1, m = numel).
  void* x = nullptr;         // parameter, updated in place
  const void* g = nullptr;   // gradient
  void* row = nullptr;       // factored: R, [slices, n]
  void* col = nullptr;       // factored: C, [slices, m]
  void* full = nullptr;      // unfactored: V, [slices, n, m]
  void* momentum = nullptr;  // [slices, n, m] when beta1 > 0, else null
  int64_t slices = 1, n = 1, m = 0;
  bool factored = false;

  double beta2 = 0;  // beta2_t = 1 - t^(-decay_exponent)
  double rate = 0;   // rho_t or the scheduled learning rate

  // AdafactorOptions, as validated there.
  double eps1 = 1e-30, eps2 = 1e-3;
  double clip_threshold = 1.0;  // 0 = no update clipping
  double beta1 = 0.0;           // > 0 needs `momentum`
  double weight_decay = 0.0;
  bool scale_parameter = true;

  // Optional device buffer of slices x 3 doubles; receives, per slice, the
  // step size alpha_t, RMS(U) before clipping and RMS(X_{t-1}) (the fields of
  // AdafactorSliceStats, in that order). Null: not written.
  double* stats = nullptr;
};

// One AdaFactor update (optim/adafactor.h) of one parameter from its gradient.
// Uses cuda::Workspace slot 3 as scratch. Asynchronous: no host synchronisation.
void AdafactorUpdateCuda(const AdafactorCudaArgs& args);

}  // namespace baton::cuda
