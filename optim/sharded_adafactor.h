// AdaFactor across the data-parallel replicas of one pipeline stage (ZeRO-1
// style, by whole tensors). Every replica holds the same parameters and, after
// ReduceGradients, the same summed gradient; each parameter is owned by one
// replica, which alone keeps its AdaFactor state (and, with bf16 weights on
// GPUs, its fp32 master copy) and computes its update; the owners then
// broadcast the new values. Whole tensors keep the statistics AdaFactor takes
// over a whole tensor (row and column sums, RMS(U), RMS(X)) exact
// (REFERENCE.md, "Sharding").
//
// Owners are assigned largest tensor first to the least-loaded replica, ties
// to the lower replica: deterministic from the parameter list alone.
#pragma once

#include <vector>

#include "layers/param.h"
#include "optim/adafactor.h"
#include "runtime/transport.h"

namespace baton {

class ShardedAdafactor {
 public:
  // `params` must be the same list (names, shapes, order) on every replica of `replicas`;
  // `replicas` may be null for a single replica.
  ShardedAdafactor(const AdafactorOptions& options, std::vector<Param*> params, Transport* replicas);

  // Sums every parameter's gradient over the replicas (deterministic, replica order).
  Status ReduceGradients();
  // Owners update their parameters from the summed gradients; then every replica
  // receives the new values.
  Status Step(int64_t step, double rate);

  int owner(size_t param_index) const { return owners_[param_index]; }
  // Whether this replica owns (keeps the state of, and updates) parameter i.
  bool owns(size_t param_index) const { return owners_[param_index] == replica_; }
  const std::vector<Param*>& params() const { return params_; }
  const AdafactorOptions& options() const { return optimizer_.options(); }
  // The state of a parameter this replica owns (checkpoints read and set it).
  const AdafactorState& state(const std::string& param_name) const { return optimizer_.state(param_name); }
  AdafactorState& mutable_state(const std::string& param_name) { return optimizer_.mutable_state(param_name); }
  // AdaFactor state this replica keeps.
  int64_t StateBytes() const { return optimizer_.StateBytes(); }

 private:
  std::vector<Param*> params_;
  Transport* replicas_;
  std::vector<int> owners_;
  int replica_;
  Adafactor optimizer_;  // holds only this replica's parameters
};

}  // namespace baton
