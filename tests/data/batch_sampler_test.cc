#include "data/batch_sampler.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/data/test_files.h"

namespace baton {
namespace {

constexpr int kSeqLen = 4;

// Three shards of consecutive token values, so a window is known by its first
// token: shard k holds base_k, base_k + 1, ...
class BatchSamplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteShard("s_000000.bin", 1000, 41);   // windows start 1000, 1004, ..., 1036 (10)
    WriteShard("s_000001.bin", 20000, 12);  // 20000, 20004 (2; 20008 would need token 20012)
    WriteShard("s_000002.bin", 30000, 30);  // 30000, ..., 30024 (7)
    Result<TokenDataset> data = TokenDataset::Open(dir_ / "s_*.bin", 50257);
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    data_ = std::make_unique<TokenDataset>(std::move(*data));
    for (int s = 1000; s <= 1036; s += 4) all_starts_.insert(s);
    for (int s = 20000; s <= 20004; s += 4) all_starts_.insert(s);
    for (int s = 30000; s <= 30024; s += 4) all_starts_.insert(s);
  }
  void WriteShard(const std::string& name, int first, int count) {
    std::vector<uint16_t> tokens;
    for (int i = 0; i < count; ++i) tokens.push_back(static_cast<uint16_t>(first + i));
    ASSERT_TRUE(WriteTokenShard(dir_ / name, tokens).ok());
  }
  // First tokens of the next `n` windows, taken `batch` at a time.
  static std::vector<int> Take(BatchSampler* sampler, int n, int batch = 1) {
    std::vector<int> starts;
    Tensor x, y;
    while (static_cast<int>(starts.size()) < n) {
      sampler->Next(batch, &x, &y);
      for (int b = 0; b < batch; ++b) starts.push_back(x.data<int32_t>()[b * kSeqLen]);
    }
    starts.resize(n);
    return starts;
  }

  ScratchDir dir_;
  std::unique_ptr<TokenDataset> data_;
  std::set<int> all_starts_;  // 19 windows
};

TEST_F(BatchSamplerTest, TargetsAreTokensShiftedByOne) {
  BatchSampler sampler(data_.get(), kSeqLen, 7);
  Tensor x, y;
  sampler.Next(5, &x, &y);
  ASSERT_EQ(x.shape(), (Shape{5, kSeqLen}));
  ASSERT_EQ(y.shape(), (Shape{5, kSeqLen}));
  ASSERT_EQ(x.dtype(), DType::kI32);
  ASSERT_EQ(y.dtype(), DType::kI32);
  for (int b = 0; b < 5; ++b) {
    const int32_t* tokens = x.data<int32_t>() + b * kSeqLen;
    const int32_t* targets = y.data<int32_t>() + b * kSeqLen;
    EXPECT_TRUE(all_starts_.count(tokens[0])) << tokens[0];
    for (int t = 0; t < kSeqLen; ++t) {
      EXPECT_EQ(tokens[t], tokens[0] + t);  // a contiguous span of the shard
      EXPECT_EQ(targets[t], tokens[0] + t + 1);
    }
  }
}

TEST_F(BatchSamplerTest, SameSeedSameBatchesOtherSeedOtherOrder) {
  BatchSampler a(data_.get(), kSeqLen, 1234), b(data_.get(), kSeqLen, 1234), c(data_.get(), kSeqLen, 1235);
  const std::vector<int> from_a = Take(&a, 60, 3);
  EXPECT_EQ(from_a, Take(&b, 60, 3));
  EXPECT_NE(from_a, Take(&c, 60, 3));
  // Batch size does not change the stream of windows.
  BatchSampler d(data_.get(), kSeqLen, 1234);
  EXPECT_EQ(from_a, Take(&d, 60, 1));
}

TEST_F(BatchSamplerTest, EveryWindowOncePerEpochInANewOrder) {
  BatchSampler sampler(data_.get(), kSeqLen, 99);
  ASSERT_EQ(sampler.num_windows(), 19u);
  ASSERT_EQ(sampler.windows_per_epoch(), 19u);
  std::vector<std::vector<int>> epochs;
  for (uint64_t epoch = 0; epoch < 4; ++epoch) {
    EXPECT_EQ(sampler.cursor().epoch, epoch);
    EXPECT_EQ(sampler.cursor().position, 0u);
    epochs.push_back(Take(&sampler, 19));
    EXPECT_EQ(std::set<int>(epochs.back().begin(), epochs.back().end()), all_starts_) << "epoch " << epoch;
  }
  EXPECT_EQ(sampler.cursor().epoch, 4u);
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
  // Not simply the file order.
  EXPECT_NE(epochs[0], std::vector<int>(all_starts_.begin(), all_starts_.end()));
}

TEST_F(BatchSamplerTest, CursorRestoreReplaysTheSameBatches) {
  BatchSampler original(data_.get(), kSeqLen, 5);
  Take(&original, 25, 5);  // into the second epoch
  const SamplerCursor saved = original.cursor();
  EXPECT_EQ(saved.epoch, 1u);
  EXPECT_EQ(saved.position, 6u);
  const std::vector<int> expected = Take(&original, 40, 4);

  BatchSampler resumed(data_.get(), kSeqLen, 5);
  resumed.set_cursor(saved);
  EXPECT_EQ(Take(&resumed, 40, 4), expected);
  EXPECT_EQ(resumed.cursor().epoch, original.cursor().epoch);
  EXPECT_EQ(resumed.cursor().position, original.cursor().position);
}

TEST_F(BatchSamplerTest, ReplicasTakeDisjointWindowsRoundRobin) {
  constexpr int kReplicas = 3;
  BatchSampler single(data_.get(), kSeqLen, 42);
  const std::vector<int> order = Take(&single, 19);
  std::set<int> seen;
  for (int r = 0; r < kReplicas; ++r) {
    BatchSampler replica(data_.get(), kSeqLen, 42, r, kReplicas);
    ASSERT_EQ(replica.windows_per_epoch(), 6u);  // 19 / 3; the 19th position is skipped
    const std::vector<int> mine = Take(&replica, 6, 2);
    for (int j = 0; j < 6; ++j) {
      EXPECT_EQ(mine[j], order[r + kReplicas * j]) << "replica " << r << " step " << j;
      EXPECT_TRUE(seen.insert(mine[j]).second) << mine[j] << " seen twice";
    }
    // All replicas agree on the cursor, and the epoch ends together.
    EXPECT_EQ(replica.cursor().epoch, 1u);
    EXPECT_EQ(replica.cursor().position, 0u);
  }
  EXPECT_EQ(seen.size(), 18u);
}

TEST_F(BatchSamplerTest, ErrorsWhenNoWindowFits) {
  Result<BatchSampler> too_long = BatchSampler::Create(data_.get(), 40, 1);  // shard 0 has 41 tokens: fits
  EXPECT_TRUE(too_long.ok());
  Result<BatchSampler> none = BatchSampler::Create(data_.get(), 41, 1);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("seq_len + 1 = 42"), std::string::npos) << none.status().message();
  EXPECT_NE(none.status().message().find(data_->glob()), std::string::npos);
  EXPECT_FALSE(BatchSampler::Create(data_.get(), 40, 1, 0, 2).ok());  // one window, two replicas
  EXPECT_FALSE(BatchSampler::Create(data_.get(), 4, 1, 3, 3).ok());
  EXPECT_FALSE(BatchSampler::Create(data_.get(), 0, 1).ok());
}

TEST(FeistelPermutation, IsABijectionForManySizes) {
  for (uint64_t n : {1ull, 2ull, 3ull, 4ull, 5ull, 17ull, 64ull, 65ull, 1000ull, 4097ull, 100003ull}) {
    FeistelPermutation perm(n, 77, 3);
    std::vector<bool> hit(n, false);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t y = perm(i);
      ASSERT_LT(y, n);
      ASSERT_FALSE(hit[y]) << "n=" << n << " value " << y << " twice";
      hit[y] = true;
    }
  }
}

TEST(FeistelPermutation, HugeDomainsCostNoMemory) {
  // Twelve billion windows: a few values, in well under a millisecond each.
  const uint64_t n = 12000000000ull;
  FeistelPermutation perm(n, 1, 2);
  std::set<uint64_t> values;
  for (uint64_t i = 0; i < 1000; ++i) {
    const uint64_t y = perm(n - 1 - i);
    EXPECT_LT(y, n);
    values.insert(y);
  }
  EXPECT_EQ(values.size(), 1000u);
}

}  // namespace
}  // namespace baton
