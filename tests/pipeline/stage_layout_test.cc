#include "pipeline/stage_layout.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

ModelSpec Gpt(int64_t layers, int64_t hidden, int64_t padded_vocab) {
  ModelSpec s;
  s.layers = layers;
  s.hidden = hidden;
  s.heads = 4;
  s.ffn = 4 * hidden;
  s.padded_vocab = padded_vocab;
  s.vocab = padded_vocab;
  return s;
}

void ExpectCoversListOnce(const StageLayout& layout, const ModelSpec& spec) {
  int64_t next = 0;
  for (auto [first, last] : layout.chunks) {
    EXPECT_EQ(first, next);
    EXPECT_GT(last, first) << "empty chunk";
    next = last;
  }
  EXPECT_EQ(next, spec.list_size());
}

TEST(StageLayout, BalancedSplitOfEqualBlocksWithACheapHead) {
  // Head cost 2*h*V = 2*64*64 is small next to a block, and the embedding counts as
  // one block: 9 units of work over 3 stages is 3 each.
  ModelSpec spec = Gpt(8, 64, 64);
  StageLayout l = BalancedStageLayout(spec, 16, 3, 1).value();
  ExpectCoversListOnce(l, spec);
  EXPECT_EQ(l.Describe(spec), "[e 0-1 | 2-4 | 5-7 l]");
  // 10 units (e + 8 blocks + a head of ~0.3 block) over 4 stages: no stage above 3 blocks.
  StageLayout four = BalancedStageLayout(spec, 16, 4, 1).value();
  ExpectCoversListOnce(four, spec);
  for (auto [first, last] : four.chunks) EXPECT_LE(last - first - (last == spec.list_size() ? 1 : 0), 3);
}

TEST(StageLayout, HeavyHeadGetsItsOwnStage) {
  // The demo model: the 50304-row head costs ~28 blocks, so it stands alone.
  ModelSpec spec = Gpt(4, 128, 50304);
  StageLayout l = BalancedStageLayout(spec, 128, 2, 1).value();
  ExpectCoversListOnce(l, spec);
  EXPECT_EQ(l.Describe(spec), "[e 0-3 | l]");
  StageLayout four = BalancedStageLayout(spec, 128, 4, 1).value();
  ExpectCoversListOnce(four, spec);
  EXPECT_EQ(four.chunks.back(), (std::pair<int64_t, int64_t>{5, 6}));
}

TEST(StageLayout, VirtualChunksMapRoundRobinToRanks) {
  ModelSpec spec = Gpt(6, 64, 64);
  StageLayout l = BalancedStageLayout(spec, 16, 2, 2).value();
  ASSERT_EQ(l.num_chunks(), 4);
  ExpectCoversListOnce(l, spec);
  EXPECT_EQ(l.rank_of_chunk(0), 0);
  EXPECT_EQ(l.rank_of_chunk(1), 1);
  EXPECT_EQ(l.rank_of_chunk(2), 0);
  EXPECT_EQ(l.global_chunk(1, 1), 3);
}

TEST(StageLayout, TooFewLayersForTheChunks) {
  auto r = BalancedStageLayout(Gpt(1, 64, 64), 16, 4, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("every chunk needs a layer"), std::string::npos);
}

TEST(StageLayout, ExplicitRanges) {
  ModelSpec spec = Gpt(24, 64, 64);
  StageLayout l = ParseStageLayout(spec, "0-5 | 6-11 | 12-17 | 18-23", 4, 1).value();
  ExpectCoversListOnce(l, spec);
  EXPECT_EQ(l.Describe(spec), "[e 0-5 | 6-11 | 12-17 | 18-23 l]");
  // The last chunk may hold only the head.
  StageLayout head_only = ParseStageLayout(spec, "0-11 | 12-23 |", 3, 1).value();
  EXPECT_EQ(head_only.Describe(spec), "[e 0-11 | 12-23 | l]");
}

TEST(StageLayout, ExplicitErrorsNameTheProblem) {
  ModelSpec spec = Gpt(8, 64, 64);
  auto message = [&](const std::string& text, int stages) {
    auto r = ParseStageLayout(spec, text, stages, 1);
    return r.ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_NE(message("0-3 | 5-7", 2).find("block 4 is on no stage"), std::string::npos) << message("0-3 | 5-7", 2);
  EXPECT_NE(message("0-4 | 4-7", 2).find("block 4 is in chunk 0 and again in chunk 1"), std::string::npos);
  EXPECT_NE(message("0-3 | 4-7", 3).find("lists 2 chunks"), std::string::npos);
  EXPECT_NE(message("0-3 | 4-9", 2).find("block 9 does not exist"), std::string::npos);
  EXPECT_NE(message("0-3 | x", 2).find("expected a block index"), std::string::npos);
  EXPECT_NE(message("0-3 | | 4-7", 3).find("chunk 1 is empty"), std::string::npos);
  EXPECT_NE(message("4-7 | 0-3", 2).find("consecutive"), std::string::npos);
}

}  // namespace
}  // namespace baton
