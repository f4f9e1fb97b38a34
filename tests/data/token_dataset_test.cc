#include "data/token_dataset.h"

#include <gtest/gtest.h>

#include "tests/data/test_files.h"

namespace baton {
namespace {

std::vector<uint16_t> Range(uint16_t first, int count) {
  std::vector<uint16_t> v;
  for (int i = 0; i < count; ++i) v.push_back(static_cast<uint16_t>(first + i));
  return v;
}

TEST(TokenDataset, NoMatchNamesTheGlob) {
  ScratchDir dir;
  const std::string glob = dir / "train_*.bin";
  Result<TokenDataset> data = TokenDataset::Open(glob, 50257);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), Status::Code::kNotFound);
  EXPECT_NE(data.status().message().find(glob), std::string::npos) << data.status().message();
}

TEST(TokenDataset, OpensMatchesInSortedOrder) {
  ScratchDir dir;
  // Written out of order; the dataset orders by path.
  ASSERT_TRUE(WriteTokenShard(dir / "x_train_000001.bin", Range(2000, 7)).ok());
  ASSERT_TRUE(WriteTokenShard(dir / "x_train_000000.bin", Range(1000, 5)).ok());
  ASSERT_TRUE(WriteTokenShard(dir / "x_val_000000.bin", Range(3000, 3)).ok());
  Result<TokenDataset> data = TokenDataset::Open(dir / "x_train_*.bin", 50257);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ(data->num_shards(), 2u);
  EXPECT_EQ(data->shard(0).path(), dir / "x_train_000000.bin");
  EXPECT_EQ(data->shard(1).path(), dir / "x_train_000001.bin");
  EXPECT_EQ(data->total_tokens(), 12u);
}

TEST(TokenDataset, BadShardFailsWithItsName) {
  ScratchDir dir;
  ASSERT_TRUE(WriteTokenShard(dir / "d_000000.bin", Range(1000, 5)).ok());
  ASSERT_TRUE(WriteTokenShard(dir / "d_000001.bin", Range(50250, 10)).ok());
  Result<TokenDataset> data = TokenDataset::Open(dir / "d_*.bin", 50257);
  ASSERT_FALSE(data.ok());
  EXPECT_NE(data.status().message().find(dir / "d_000001.bin" + ": token 50257 at position 7"), std::string::npos)
      << data.status().message();
}

TEST(TokenDataset, WindowsStrideBySeqLenAndStayInsideShards) {
  ScratchDir dir;
  ASSERT_TRUE(WriteTokenShard(dir / "w_0.bin", Range(100, 10)).ok());  // 100..109
  ASSERT_TRUE(WriteTokenShard(dir / "w_1.bin", Range(500, 3)).ok());   // too short for seq_len 3
  ASSERT_TRUE(WriteTokenShard(dir / "w_2.bin", Range(900, 7)).ok());   // 900..906
  Result<TokenDataset> data = TokenDataset::Open(dir / "w_*.bin", 50257);
  ASSERT_TRUE(data.ok());
  TokenWindows windows = data->Windows(3);
  // Shard 0: starts 100, 103, 106 (106..109 is the last full span of 4);
  // shard 1: none; shard 2: starts 900, 903 (903..906).
  const std::vector<int> starts = {100, 103, 106, 900, 903};
  ASSERT_EQ(windows.count(), starts.size());
  for (size_t i = 0; i < starts.size(); ++i) {
    for (int t = 0; t < 4; ++t) EXPECT_EQ(windows[i][t], starts[i] + t) << "window " << i;
  }
  EXPECT_EQ(data->Windows(9).count(), 1u);   // only shard 0 has 10 tokens
  EXPECT_EQ(data->Windows(10).count(), 0u);  // none has 11
}

}  // namespace
}  // namespace baton
