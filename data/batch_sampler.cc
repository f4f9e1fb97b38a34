#include "data/batch_sampler.h"

#include <algorithm>

#include "data/causal_lm_examples.h"
#include "runtime/rng.h"

namespace baton {
namespace {

// Keys each epoch's permutation apart from every other use of the data seed.
uint64_t EpochStream(uint64_t epoch) { return StreamId("baton.data.batch_sampler") + epoch; }

Status CheckReplicas(int replica, int replicas) {
  if (replicas <= 0 || replica < 0 || replica >= replicas) {
    return Status::InvalidArgument("batch sampler: replica " + std::to_string(replica) + " of " +
                                   std::to_string(replicas) + ", expected 0 <= replica < replicas");
  }
  return Status::OK();
}

std::string DescribeData(const TokenDataset& data) {
  return "\"" + data.glob() + "\" (" + std::to_string(data.total_tokens()) + " tokens in " +
         std::to_string(data.num_shards()) + " shards)";
}

}  // namespace

Status BatchSampler::Validate(const ExampleSet& examples, const std::string& source, int replica, int replicas) {
  BATON_RETURN_IF_ERROR(CheckReplicas(replica, replicas));
  const uint64_t n = examples.count();
  if (n == 0) {
    return Status::InvalidArgument(source + " has no " + examples.Describe() +
                                   "; use a shorter train.seq_len or more data");
  }
  if (n < static_cast<uint64_t>(replicas)) {
    return Status::InvalidArgument(source + " has " + std::to_string(n) + " " + examples.Describe() + ", fewer than the " +
                                   std::to_string(replicas) + " data-parallel replicas");
  }
  return Status::OK();
}

Result<BatchSampler> BatchSampler::Create(std::shared_ptr<const ExampleSet> examples, uint64_t seed, int replica,
                                          int replicas) {
  if (!examples) return Status::InvalidArgument("batch sampler: no examples");
  BATON_RETURN_IF_ERROR(Validate(*examples, "the dataset", replica, replicas));
  return BatchSampler(std::move(examples), seed, replica, replicas);
}

Result<BatchSampler> BatchSampler::Create(const TokenDataset* data, int seq_len, uint64_t seed, int replica,
                                          int replicas) {
  if (data == nullptr) return Status::InvalidArgument("batch sampler: no dataset");
  if (seq_len <= 0) return Status::InvalidArgument("data.seq_len is " + std::to_string(seq_len) + ", expected > 0");
  auto examples = std::make_shared<CausalLmExamples>(*data, seq_len);
  BATON_RETURN_IF_ERROR(Validate(*examples, DescribeData(*data), replica, replicas));
  return BatchSampler(std::move(examples), seed, replica, replicas);
}

BatchSampler::BatchSampler(const TokenDataset* data, int seq_len, uint64_t seed, int replica, int replicas)
    : BatchSampler(
          [&] {
            BATON_CHECK(data != nullptr && seq_len > 0, "batch sampler: dataset " << data << ", seq_len " << seq_len);
            return std::make_shared<CausalLmExamples>(*data, seq_len);
          }(),
          seed, replica, replicas) {}

BatchSampler::BatchSampler(std::shared_ptr<const ExampleSet> examples, uint64_t seed, int replica, int replicas)
    : examples_(std::move(examples)),
      seed_(seed),
      replica_(replica),
      replicas_(replicas),
      permutation_(1, seed, EpochStream(0)),
      permutation_epoch_(~uint64_t{0}) {
  const Status st = Validate(*examples_, "the dataset", replica, replicas);
  BATON_CHECK(st.ok(), st.message());
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
    permutation_ = FeistelPermutation(examples_->count(), seed_, EpochStream(cursor_.epoch));
    permutation_epoch_ = cursor_.epoch;
  }
  return permutation_;
}

uint64_t BatchSampler::PeekWindow() {
  WrapEpoch();
  return EpochPermutation()(cursor_.position + replica_);
}

void BatchSampler::Next(int batch, ExampleBatch* out) {
  BATON_CHECK(batch > 0, "batch " << batch);
  const int64_t seq_len = examples_->seq_len();
  auto ensure = [](Tensor* t, const Shape& shape) {
    if (!t->defined() || t->shape() != shape || t->dtype() != DType::kI32 || !t->device().is_cpu())
      *t = Tensor::Empty(shape, DType::kI32);
  };
  ensure(&out->tokens, {batch, seq_len});
  ensure(&out->targets, {batch, seq_len});
  const bool masks = examples_->has_masks();
  if (masks) {
    ensure(&out->lengths, {batch});
    ensure(&out->prefix_lengths, {batch});
  } else {
    out->lengths = out->prefix_lengths = Tensor();
  }
  for (int b = 0; b < batch; ++b) {
    ExampleRow row;
    row.tokens = out->tokens.data<int32_t>() + b * seq_len;
    row.targets = out->targets.data<int32_t>() + b * seq_len;
    examples_->Fill(PeekWindow(), cursor_.epoch, &row);
    if (masks) {
      out->lengths.data<int32_t>()[b] = row.length;
      out->prefix_lengths.data<int32_t>()[b] = row.prefix;
    }
    cursor_.position += replicas_;
    WrapEpoch();
  }
}

void BatchSampler::Next(int batch, Tensor* tokens, Tensor* targets) {
  ExampleBatch out;
  out.tokens = std::move(*tokens);
  out.targets = std::move(*targets);
  Next(batch, &out);
  *tokens = std::move(out.tokens);
  *targets = std::move(out.targets);
}

}  // namespace baton
