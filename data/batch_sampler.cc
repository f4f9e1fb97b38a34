#include "data/batch_sampler.h"

#include <algorithm>

#include "runtime/rng.h"

namespace baton {
namespace {

// Keys each epoch's permutation apart from every other use of the data seed.
uint64_t EpochStream(uint64_t epoch) { return StreamId("baton.data.batch_sampler") + epoch; }

}  // namespace

Status BatchSampler::Validate(const TokenDataset* data, int seq_len, int replica, int replicas) {
  if (data == nullptr) return Status::InvalidArgument("batch sampler: no dataset");
  if (seq_len <= 0) return Status::InvalidArgument("data.seq_len is " + std::to_string(seq_len) + ", expected > 0");
  if (replicas <= 0 || replica < 0 || replica >= replicas) {
    return Status::InvalidArgument("batch sampler: replica " + std::to_string(replica) + " of " +
                                   std::to_string(replicas) + ", expected 0 <= replica < replicas");
  }
  const uint64_t windows = data->Windows(seq_len).count();
  if (windows == 0) {
    return Status::InvalidArgument("\"" + data->glob() + "\" (" + std::to_string(data->total_tokens()) +
                                   " tokens in " + std::to_string(data->num_shards()) +
                                   " shards) has no shard with seq_len + 1 = " + std::to_string(seq_len + 1) +
                                   " tokens; use a shorter data.seq_len or more data");
  }
  if (windows < static_cast<uint64_t>(replicas)) {
    return Status::InvalidArgument("\"" + data->glob() + "\" has " + std::to_string(windows) + " windows of " +
                                   std::to_string(seq_len + 1) + " tokens, fewer than the " +
                                   std::to_string(replicas) + " data-parallel replicas");
  }
  return Status::OK();
}

Result<BatchSampler> BatchSampler::Create(const TokenDataset* data, int seq_len, uint64_t seed, int replica,
                                          int replicas) {
  BATON_RETURN_IF_ERROR(Validate(data, seq_len, replica, replicas));
  return BatchSampler(data, seq_len, seed, replica, replicas);
}

BatchSampler::BatchSampler(const TokenDataset* data, int seq_len, uint64_t seed, int replica, int replicas)
    : seed_(seed),
      replica_(replica),
      replicas_(replicas),
      permutation_(1, seed, EpochStream(0)),
      permutation_epoch_(~uint64_t{0}) {
  const Status st = Validate(data, seq_len, replica, replicas);
  BATON_CHECK(st.ok(), st.message());
  windows_ = data->Windows(seq_len);
}

void BatchSampler::set_cursor(const SamplerCursor& cursor) {
  cursor_ = cursor;
  WrapEpoch();
}

void BatchSampler::WrapEpoch() {
  const uint64_t usable = windows_per_epoch() * replicas_;
  if (cursor_.position + replicas_ > usable) {
    ++cursor_.epoch;
    cursor_.position = 0;
  }
}

const FeistelPermutation& BatchSampler::EpochPermutation() {
  if (permutation_epoch_ != cursor_.epoch) {
    permutation_ = FeistelPermutation(windows_.count(), seed_, EpochStream(cursor_.epoch));
    permutation_epoch_ = cursor_.epoch;
  }
  return permutation_;
}

uint64_t BatchSampler::PeekWindow() {
  WrapEpoch();
  return EpochPermutation()(cursor_.position + replica_);
}

void BatchSampler::Next(int batch, Tensor* tokens, Tensor* targets) {
  BATON_CHECK(batch > 0, "batch " << batch);
  const int64_t seq_len = windows_.seq_len();
  const Shape shape = {batch, seq_len};
  for (Tensor* t : {tokens, targets}) {
    if (!t->defined() || t->shape() != shape || t->dtype() != DType::kI32 || !t->device().is_cpu()) {
      *t = Tensor::Empty(shape, DType::kI32);
    }
  }
  int32_t* x = tokens->data<int32_t>();
  int32_t* y = targets->data<int32_t>();
  for (int b = 0; b < batch; ++b) {
    const uint16_t* window = windows_[PeekWindow()];
    std::copy(window, window + seq_len, x + b * seq_len);
    std::copy(window + 1, window + seq_len + 1, y + b * seq_len);
    cursor_.position += replicas_;
    WrapEpoch();
  }
}

}  // namespace baton
