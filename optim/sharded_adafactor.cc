#include "optim/sharded_adafactor.h"

#include <algorithm>
#include <numeric>

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

Status ShardedAdafactor::ReduceGradients() {
  if (!replicas_ || replicas_->size() == 1) return Status::OK();
  for (Param* p : params_) BATON_RETURN_IF_ERROR(replicas_->AllReduceSum(&p->grad));
  return Status::OK();
}

Status ShardedAdafactor::Step(int64_t step, double rate) {
  optimizer_.Step(step, rate);
  if (!replicas_ || replicas_->size() == 1) return Status::OK();
  for (size_t i = 0; i < params_.size(); ++i) BATON_RETURN_IF_ERROR(replicas_->Broadcast(&params_[i]->value, owners_[i]));
  return Status::OK();
}

}  // namespace baton
