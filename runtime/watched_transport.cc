#include "runtime/watched_transport.h"

#include "runtime/comm_watchdog.h"
#include "runtime/log.h"

namespace baton {
namespace {

class WatchedTransport final : public Transport {
 public:
  explicit WatchedTransport(std::unique_ptr<Transport> inner) : inner_(std::move(inner)) {}

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  int max_tag() const override { return inner_->max_tag(); }
  bool matches_by_tag() const override { return inner_->matches_by_tag(); }
  std::string Describe() const override { return inner_->Describe(); }

  Status Exchange(const std::vector<P2POp>& ops) override {
    HostWatch watch(Name("Exchange of " + std::to_string(ops.size()) + " messages"));
    return inner_->Exchange(ops);
  }
  Result<int64_t> Post(const std::vector<P2POp>& ops) override { return inner_->Post(ops); }
  Status Wait(int64_t handle) override {
    HostWatch watch(Name("Wait"));
    return inner_->Wait(handle);
  }
  Result<bool> Test(int64_t handle) override { return inner_->Test(handle); }
  Status AllReduceSum(Tensor* t) override {
    HostWatch watch(Name("AllReduceSum of " + t->Describe()));
    return inner_->AllReduceSum(t);
  }
  Status AllReduceSum(std::vector<double>* values) override {
    HostWatch watch(Name("AllReduceSum of " + std::to_string(values->size()) + " values"));
    return inner_->AllReduceSum(values);
  }
  Status AllGather(const Tensor& mine, Tensor* all) override {
    HostWatch watch(Name("AllGather of " + mine.Describe()));
    return inner_->AllGather(mine, all);
  }
  Status ReduceScatterSum(const Tensor& in, Tensor* mine) override {
    HostWatch watch(Name("ReduceScatterSum of " + in.Describe()));
    return inner_->ReduceScatterSum(in, mine);
  }
  Status Broadcast(Tensor* t, int root) override {
    HostWatch watch(Name("Broadcast of " + t->Describe()));
    return inner_->Broadcast(t, root);
  }
  Status Barrier() override {
    HostWatch watch(Name("Barrier"));
    return inner_->Barrier();
  }
  Result<std::unique_ptr<Transport>> Split(int color, int key) override {
    HostWatch watch(Name("Split"));
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<Transport> sub, inner_->Split(color, key));
    return NewWatchedTransport(std::move(sub));
  }

 private:
  std::string Name(const std::string& op) const {
    return "world rank " + std::to_string(LogRank()) + ": MPI " + op + " in " + inner_->Describe();
  }

  std::unique_ptr<Transport> inner_;
};

}  // namespace

std::unique_ptr<Transport> NewWatchedTransport(std::unique_ptr<Transport> inner) {
  return std::make_unique<WatchedTransport>(std::move(inner));
}

}  // namespace baton
