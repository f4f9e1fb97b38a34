// AdaFactor across the data-parallel replicas of one pipeline stage (ZeRO-1
// style, by whole tensors). Each parameter is owned by one replica, which
// alone keeps its AdaFactor state and computes its update:
//   1. reduce-scatter: every replica sends each gradient to its owner, which
//      adds the replicas' copies in replica order ((g0 + g1) + g2) + ...;
//      posted layer by layer as the backward finishes them (PostGradients),
//      so the traffic overlaps the backward of earlier layers;
//   2. the owners update their parameters (fp32 master values);
//   3. all-gather: the owners broadcast the new values.
// By tensor size the owners' shares are balanced, so each replica receives
// and sends about (n-1)/n of the gradients and weights, as a ring
// reduce-scatter and all-gather would (but point to point: an owner receives
// from all n-1 others at once, and holds their n-1 copies of its gradients
// from the backward until ReduceGradients, about (n-1)/n of the fp32
// gradients extra; fine for the few replicas of one node, a ring over
// buckets would scale further). Whole tensors keep the statistics
// AdaFactor takes over a whole tensor (row and column sums, RMS(U), RMS(X))
// exact (REFERENCE.md, "Sharding").
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

  // Starts summing the gradients of params()[i], i in `indices`, at their owners:
  // posted, not waited; the gradients must be final. Indices already posted this step
  // are skipped.
  Status PostGradients(const std::vector<size_t>& indices);
  // Posts the remaining gradients, waits for all, and each owner adds the replicas'
  // copies in replica order (deterministic). Afterwards an owned parameter's grad is
  // the sum over replicas; another's is this replica's own, which nothing uses.
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
  struct Incoming {  // an owned gradient's copies from the other replicas
    size_t param;
    std::vector<Tensor> from;  // by replica; undefined for this one
  };

  std::vector<Param*> params_;
  Transport* replicas_;
  std::vector<bool> posted_;       // this step
  std::vector<int64_t> handles_;   // posted batches
  std::vector<Incoming> incoming_;
  std::vector<int> owners_;
  int replica_;
  Adafactor optimizer_;  // holds only this replica's parameters
};

}  // namespace baton
