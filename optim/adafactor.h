// AdaFactor (Shazeer & Stern 2018, Algorithms 4 and 5), exactly as written in
// /work/shared/REFERENCE.md, with the options users expect from other
// implementations as named fields whose defaults are the paper's values.
//
// Per parameter X with gradient G at step t (1-based):
//   beta2_t = 1 - t^(-decay_exponent)            (beta2_1 = 0: no bias correction)
//   alpha_t = max(eps2, RMS(X_{t-1})) * rate      (rate if !scale_parameter)
//   factored:   R = b R + (1-b) rowsum(G^2+eps1);  C = b C + (1-b) colsum(G^2+eps1)
//               Vhat = R C^T / sum(R)
//   unfactored: V = b V + (1-b) (G^2+eps1);        Vhat = V
//   U = G / sqrt(Vhat);  Uhat = U / max(1, RMS(U)/d)
//   beta1 > 0:  m = beta1 m + (1-beta1) Uhat, step = m; else step = Uhat
//   X_t = X_{t-1} - alpha_t step - weight_decay * rate * X_{t-1}
//
// Shapes: rank 0/1 tensors keep a full V. Rank 2 [n, m] is factored unless
// min(n, m) < min_dim_to_factor. Rank >= 3 is *stacked*: every leading axis is
// a batch axis and each trailing [n, m] slice has its own R/C (or V slice) and
// its own RMS(U) and RMS(X), so a stacked [L, n, m] tensor updates exactly like
// L separate [n, m] tensors.
//
// Parameters may be fp32 or fp64; state tensors have the parameter's dtype
// and live on the parameter's device. Reductions accumulate in double in a
// fixed order, so results are bitwise reproducible.
//
// GPU parameters (value, grad and state on a CUDA device) are updated by
// optim/cuda/ in a CUDA build (a CPU-only build aborts with a message): the
// same arithmetic, enqueued on the compute stream without waiting for the
// GPU. The sums run in another (fixed) order than the CPU's loops, so the
// results agree with the CPU within the rounding of the stored values rather
// than bit for bit; two GPU runs agree bit for bit. Adafactor::Step updates
// all its GPU parameters together (a handful of launches per step, see
// cuda::AdafactorCudaGroup), with the same bits as AdafactorUpdate on each.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "layers/param.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

struct AdafactorOptions {
  double eps1 = 1e-30, eps2 = 1e-3;
  double clip_threshold = 1.0;     // d; 0 = no update clipping
  double decay_exponent = 0.8;     // beta2_t = 1 - t^(-decay_exponent)
  double beta1 = 0.0;              // 0 = no first moment; else m = beta1 m + (1-beta1) Uhat, X -= alpha m
  double weight_decay = 0.0;       // decoupled: X -= weight_decay * rate * X_{t-1}
  bool scale_parameter = true;     // alpha_t = max(eps2, RMS(X_{t-1})) * rate, else alpha_t = rate
  int min_dim_to_factor = 0;       // a matrix whose smaller of the last two dims < this keeps a full V
};

// InvalidArgument naming the offending field when an option is out of range
// (config loaders call this; the Adafactor constructor insists on it).
Status ValidateAdafactorOptions(const AdafactorOptions& options);

// True when a parameter of this shape keeps row/column factors.
bool AdafactorFactored(const AdafactorOptions& options, const Shape& shape);

struct AdafactorState {            // per parameter; tensors have the parameter's dtype
  bool factored = false;           // true: row (R) and col (C) sums; false: full (V)
  Tensor row, col, full, momentum; // row: lead+[n], col: lead+[m], full: param shape; momentum only when beta1 > 0
  int64_t bytes() const;
};

// Zero state for a parameter of this shape and dtype on `device` (what
// AddParams creates, on the parameter's device; checkpoint loaders use it to
// know the layout to fill). Counted as optimizer memory.
AdafactorState NewAdafactorState(const AdafactorOptions& options, const Shape& shape, DType dtype,
                                 Device device = Device::CPU());

// What one [n, m] slice (or a whole vector) saw in an update, for logs and tests.
struct AdafactorSliceStats {
  double alpha = 0;       // the step size alpha_t
  double update_rms = 0;  // RMS(U) before clipping
  double param_rms = 0;   // RMS(X_{t-1})
};

// One update of one parameter from its .grad; returns one entry per slice
// (a single entry unless the parameter is stacked). The building block of
// Adafactor::Step, usable on its own when parameters are sharded by tensor.
// GPU parameter: returns an empty vector (the statistics would cost a wait for
// the GPU); when `device_stats` is given, it is (re)allocated as needed and
// receives them as f64 [slices, 3] on the GPU (alpha, update_rms, param_rms
// per slice), for AdafactorStatsFromDevice later. Ignored for CPU parameters.
std::vector<AdafactorSliceStats> AdafactorUpdate(const AdafactorOptions& options, Param& param,
                                                 AdafactorState& state, int64_t step, double rate,
                                                 Tensor* device_stats = nullptr);

// The statistics AdafactorUpdate left in `device_stats` (one device-to-host
// copy, which waits for the GPU); empty for an undefined tensor.
std::vector<AdafactorSliceStats> AdafactorStatsFromDevice(const Tensor& device_stats);

class Adafactor {
 public:
  explicit Adafactor(AdafactorOptions options);

  const AdafactorOptions& options() const { return options_; }

  // Creates zero state per parameter, keyed by name (names must be unique).
  void AddParams(const std::vector<Param*>& params);

  // One update of every added parameter from its .grad (the results of
  // AdafactorUpdate on each). step = t (1-based); rate = rho_t (the relative
  // step) or the scheduled learning rate, supplied by the caller from the LR
  // schedule. GPU parameters are updated together, without waiting for the GPU
  // and, after the first step, without allocating: their plan is kept on the
  // device and rebuilt only when the tensors change (new parameters, state
  // replaced through mutable_state).
  void Step(int64_t step, double rate);

  int64_t StateBytes() const;  // all AdafactorState bytes
  const AdafactorState& state(const std::string& param_name) const;
  AdafactorState& mutable_state(const std::string& param_name);  // checkpoints/growth will set it
  // Per-slice statistics of the parameter's latest update (empty before the first).
  // GPU parameters: Step leaves them on the GPU; the first call after a Step
  // copies them to the host (one small copy that waits for the GPU), later calls
  // return that copy. Not thread-safe (it fills a cache).
  const std::vector<AdafactorSliceStats>& last_stats(const std::string& param_name) const;
  std::vector<std::string> param_names() const;  // in the order added
  // Times Step (re)built the device plan of the GPU parameters (tests).
  int64_t device_table_builds() const;

 private:
  struct Entry {
    Param* param = nullptr;
    AdafactorState state;
    mutable std::vector<AdafactorSliceStats> stats;  // host copy (filled lazily for GPU parameters)
    Tensor device_stats;                             // GPU parameters: f64 [slices, 3] on the device
    mutable bool stats_on_device = false;            // device_stats is newer than stats
  };
  const Entry& Find(const std::string& name) const;

  AdafactorOptions options_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  // The cuda::AdafactorCudaGroup of the GPU parameters (CUDA builds; created
  // by the first Step with any). Type-erased so this header stays plain C++.
  std::shared_ptr<void> device_group_;
};

// Adam's state for the same parameters, for comparison: two fp32 moments per element.
int64_t AdamStateBytes(const std::vector<Param*>& params);

}  // namespace baton
