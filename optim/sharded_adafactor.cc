#include "optim/sharded_adafactor.h"

#include <algorithm>
#include <numeric>

#include "layers/ops.h"

namespace baton {

ShardedAdafactor::ShardedAdafactor(const AdafactorOptions& options, std::vector<Param*> params, Transport* replicas)
    : params_(std::move(params)), replicas_(replicas), owners_(params_.size(), 0), optimizer_(options) {
  const int n = replicas ? replicas->size() : 1;
  std::vector<size_t> order(params_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return params_[a]->value.numel() > params_[b]->value.numel(); });
  std::vector<int64_t> load(static_cast<size_t>(n), 0);
  for (size_t i : order) {
    const int least = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    owners_[i] = least;
    load[least] += params_[i]->value.numel();
  }
  replica_ = replicas ? replicas->rank() : 0;
  std::vector<Param*> mine;
  for (size_t i = 0; i < params_.size(); ++i)
    if (owners_[i] == replica_) mine.push_back(params_[i]);
  optimizer_.AddParams(mine);
}

Status ShardedAdafactor::PostGradients(const std::vector<size_t>& indices) {
  if (!replicas_ || replicas_->size() == 1) return Status::OK();
  posted_.resize(params_.size(), false);
  MemoryScope scope(MemoryCategory::kGradients);
  std::vector<P2POp> ops;
  for (size_t i : indices) {
    if (posted_[i]) continue;
    posted_[i] = true;
    if (static_cast<int64_t>(i) > replicas_->max_tag())
      return Status::InvalidArgument("a pipeline chunk with " + std::to_string(params_.size()) +
                                     " parameters needs more message tags than this MPI allows (" +
                                     std::to_string(replicas_->max_tag()) + ")");
    const Tensor& grad = params_[i]->grad;
    const int tag = static_cast<int>(i);
    if (owners_[i] != replica_) {
      ops.push_back(P2POp::Send(owners_[i], tag, grad));
      continue;
    }
    Incoming in{i, std::vector<Tensor>(static_cast<size_t>(replicas_->size()))};
    for (int q = 0; q < replicas_->size(); ++q) {
      if (q == replica_) continue;
      in.from[q] = Tensor::Empty(grad.shape(), grad.dtype(), grad.device());
      ops.push_back(P2POp::Recv(q, tag, in.from[q]));
    }
    incoming_.push_back(std::move(in));
  }
  if (ops.empty()) return Status::OK();
  BATON_ASSIGN_OR_RETURN(int64_t handle, replicas_->Post(ops));
  handles_.push_back(handle);
  return Status::OK();
}

Status ShardedAdafactor::ReduceGradients() {
  if (!replicas_ || replicas_->size() == 1) return Status::OK();
  std::vector<size_t> all(params_.size());
  std::iota(all.begin(), all.end(), 0);
  BATON_RETURN_IF_ERROR(PostGradients(all));
  for (int64_t handle : handles_) BATON_RETURN_IF_ERROR(replicas_->Wait(handle));
  for (Incoming& in : incoming_) {
    Tensor& mine = params_[in.param]->grad;
    // ((g0 + g1) + g2) + ...: this replica's own copy stands at its position in the order.
    Tensor sum = replica_ == 0 ? mine : in.from[0];
    for (int q = 1; q < replicas_->size(); ++q) ops::Axpy(1.0, q == replica_ ? mine : in.from[q], &sum);
    if (replica_ != 0) mine.CopyFrom(sum);
  }
  handles_.clear();
  incoming_.clear();
  posted_.assign(params_.size(), false);
  return Status::OK();
}

Status ShardedAdafactor::Step(int64_t step, double rate) {
  optimizer_.Step(step, rate);
  if (!replicas_ || replicas_->size() == 1) return Status::OK();
  for (size_t i = 0; i < params_.size(); ++i) BATON_RETURN_IF_ERROR(replicas_->Broadcast(&params_[i]->value, owners_[i]));
  return Status::OK();
}

}  // namespace baton
