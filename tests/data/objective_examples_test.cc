// The example sets of the masked-LM and seq2seq objectives on hand-made shards:
// document boundaries, BERT's selection and 80/10/10 replacement, determinism,
// and UniLM's source/target layout and truncation.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "data/batch_sampler.h"
#include "data/document_spans.h"
#include "data/masked_lm_examples.h"
#include "data/seq2seq_examples.h"
#include "runtime/rng.h"
#include "tests/data/test_files.h"

namespace baton {
namespace {

constexpr int kEot = 50256, kMask = 50257, kSep = 50258, kVocab = 50259;

class ObjectiveExamplesTest : public ::testing::Test {
 protected:
  // Writes a shard of documents, each <eot> + its tokens (the layout `baton prepare` writes).
  void WriteDocuments(const std::string& name, const std::vector<std::vector<uint16_t>>& docs, bool leading_eot = true) {
    std::vector<uint16_t> tokens;
    for (size_t d = 0; d < docs.size(); ++d) {
      if (leading_eot || d > 0) tokens.push_back(kEot);
      tokens.insert(tokens.end(), docs[d].begin(), docs[d].end());
    }
    ASSERT_TRUE(WriteTokenShard(dir_ / name, tokens).ok());
  }
  TokenDataset Open(const std::string& glob) {
    Result<TokenDataset> d = TokenDataset::Open(dir_ / glob, kVocab);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return std::move(*d);
  }
  // A document of n distinct ordinary tokens, starting at `first`.
  static std::vector<uint16_t> Doc(int first, int n) {
    std::vector<uint16_t> d;
    for (int i = 0; i < n; ++i) d.push_back(static_cast<uint16_t>(first + i));
    return d;
  }
  struct Row {
    std::vector<int32_t> tokens, targets;
    int32_t length, prefix;
  };
  static Row FillRow(const ExampleSet& set, uint64_t index, uint64_t epoch) {
    Row r;
    r.tokens.assign(static_cast<size_t>(set.seq_len()), -7);
    r.targets.assign(static_cast<size_t>(set.seq_len()), -7);
    ExampleRow row;
    row.tokens = r.tokens.data();
    row.targets = r.targets.data();
    set.Fill(index, epoch, &row);
    r.length = row.length;
    r.prefix = row.prefix;
    return r;
  }

  ScratchDir dir_;
};

TEST_F(ObjectiveExamplesTest, DocumentSpansStartAtEveryEndOfTextAndEveryShard) {
  WriteDocuments("a_000000.bin", {Doc(10, 3), Doc(20, 1), Doc(30, 4)});
  WriteDocuments("a_000001.bin", {Doc(40, 2), Doc(50, 2)}, /*leading_eot=*/false);  // continues a document
  TokenDataset data = Open("a_*.bin");
  std::vector<TokenSpan> spans = DocumentSpans(data, kEot);
  ASSERT_EQ(spans.size(), 5u);
  const std::vector<uint64_t> sizes{4, 2, 5, 2, 3};
  for (size_t i = 0; i < spans.size(); ++i) EXPECT_EQ(spans[i].size, sizes[i]) << i;
  EXPECT_EQ(spans[2].tokens[0], kEot);
  EXPECT_EQ(spans[2].tokens[1], 30);
  EXPECT_EQ(spans[3].tokens[0], 40);  // the shard's continuation has no leading eot
}

MaskedLmOptions Mlm(int seq_len, uint64_t seed = 11) {
  MaskedLmOptions o;
  o.seq_len = seq_len;
  o.vocab = kVocab;
  o.seed = seed;
  return o;
}

TEST_F(ObjectiveExamplesTest, MaskedLmExamplesNeverCrossADocumentAndKeepEveryToken) {
  WriteDocuments("m_000000.bin", {Doc(100, 20), Doc(300, 7), Doc(500, 9)});
  TokenDataset data = Open("m_*.bin");
  MaskedLmOptions o = Mlm(8);
  o.mask_token_fraction = o.random_token_fraction = 0;  // selected inputs keep their token
  MaskedLmExamples set(data, o);
  // The fewest chunks of at most 7 content tokens, of nearly equal sizes: 20 -> 6 7 7,
  // 7 -> 7, 9 -> 4 5 (not 7 2: a tail chunk of 2 would be mostly padding).
  ASSERT_EQ(set.count(), 6u);
  const std::vector<int> lengths{7, 8, 8, 8, 5, 6};
  std::vector<int32_t> content;
  for (uint64_t i = 0; i < set.count(); ++i) {
    const Row r = FillRow(set, i, 0);
    EXPECT_EQ(r.length, lengths[i]) << i;
    EXPECT_EQ(r.prefix, 8) << "masked LM attends both ways";
    EXPECT_EQ(r.tokens[0], kEot) << "every example starts with <|endoftext|>";
    EXPECT_EQ(r.targets[0], kExampleNoTarget) << "the start token is never selected";
    for (int p = 1; p < r.length; ++p) {
      EXPECT_NE(r.tokens[p], kEot) << "example " << i << " crosses a document boundary";
      content.push_back(r.tokens[p]);
    }
    for (int p = r.length; p < 8; ++p) EXPECT_EQ(r.targets[p], kExampleNoTarget) << "padding has no target";
  }
  std::vector<int32_t> want;
  for (const auto& d : {Doc(100, 20), Doc(300, 7), Doc(500, 9)}) want.insert(want.end(), d.begin(), d.end());
  EXPECT_EQ(content, want);
}

TEST_F(ObjectiveExamplesTest, MaskedLmSelectsFifteenPercentAndReplacesEightyTenTen) {
  std::vector<std::vector<uint16_t>> docs;
  RandomStream rng(3, 4);
  for (int d = 0; d < 200; ++d) {
    std::vector<uint16_t> doc;
    for (int i = 0; i < 100; ++i) doc.push_back(static_cast<uint16_t>(rng.Below(50000)));
    docs.push_back(doc);
  }
  WriteDocuments("r_000000.bin", docs);
  TokenDataset data = Open("r_*.bin");
  MaskedLmExamples set(data, Mlm(101));
  ASSERT_EQ(set.count(), 200u);
  int64_t selected = 0, masked = 0, randomized = 0, kept = 0;
  for (uint64_t i = 0; i < set.count(); ++i) {
    const Row r = FillRow(set, i, 0);
    ASSERT_EQ(r.length, 101);
    int here = 0;
    for (int p = 1; p < r.length; ++p) {
      const int32_t original = docs[i][static_cast<size_t>(p - 1)];
      if (r.targets[p] == kExampleNoTarget) {
        ASSERT_EQ(r.tokens[p], original) << "an unselected input changed";
        continue;
      }
      ++here;
      ASSERT_EQ(r.targets[p], original) << "the target is the original token";
      if (r.tokens[p] == kMask) ++masked;
      else if (r.tokens[p] == original) ++kept;
      else ++randomized;
      ASSERT_TRUE(r.tokens[p] != kEot && r.tokens[p] != kSep && r.tokens[p] < kVocab) << r.tokens[p];
    }
    EXPECT_EQ(here, 15) << "round(0.15 x 100) positions per example";
    selected += here;
  }
  ASSERT_EQ(selected, 3000);
  // Binomial(3000, p): 4 standard deviations.
  EXPECT_NEAR(masked / 3000.0, 0.8, 4 * std::sqrt(0.8 * 0.2 / 3000));
  EXPECT_NEAR(randomized / 3000.0, 0.1, 4 * std::sqrt(0.1 * 0.9 / 3000));
  EXPECT_NEAR(kept / 3000.0, 0.1, 4 * std::sqrt(0.1 * 0.9 / 3000));
}

TEST_F(ObjectiveExamplesTest, MaskedLmIsAFunctionOfSeedEpochAndIndex) {
  WriteDocuments("d_000000.bin", {Doc(100, 60), Doc(300, 60)});
  TokenDataset data = Open("d_*.bin");
  MaskedLmExamples a(data, Mlm(61, 5)), b(data, Mlm(61, 5)), other_seed(data, Mlm(61, 6));
  for (uint64_t i = 0; i < 2; ++i) {
    const Row r = FillRow(a, i, 3);
    EXPECT_EQ(r.tokens, FillRow(b, i, 3).tokens);
    EXPECT_EQ(r.targets, FillRow(b, i, 3).targets);
    EXPECT_NE(r.targets, FillRow(a, i, 4).targets) << "a new masking every epoch";
    EXPECT_NE(r.targets, FillRow(other_seed, i, 3).targets);
  }
  WriteDocuments("s_000000.bin", {Doc(7, 2)});
  TokenDataset tiny = Open("s_*.bin");
  MaskedLmExamples t(tiny, Mlm(16));
  const Row r = FillRow(t, 0, 0);
  int n = 0;
  for (int32_t x : r.targets) n += x != kExampleNoTarget;
  EXPECT_EQ(n, 1) << "round(0.15 x 2) = 0, but every example predicts at least one token";
}

// <eot> source <sep> target, followed by the next example's <eot>.
std::vector<uint16_t> Example(const std::vector<uint16_t>& source, const std::vector<uint16_t>& target) {
  std::vector<uint16_t> e = source;
  e.push_back(kSep);
  e.insert(e.end(), target.begin(), target.end());
  return e;
}

TEST_F(ObjectiveExamplesTest, Seq2SeqLayoutTargetsAndPrefix) {
  WriteDocuments("q_000000.bin", {Example({1, 2, 3}, {4, 5}), {9, 9, 9} /* no sep: skipped */, Example({6}, {})});
  TokenDataset data = Open("q_*.bin");
  Seq2SeqExamples set(data, 10, kEot, kSep);
  ASSERT_EQ(set.count(), 2u);
  EXPECT_EQ(set.skipped(), 1u);
  const Row r = FillRow(set, 0, 0);
  // Window: eot 1 2 3 sep 4 5 eot; inputs are all but the last, targets shifted by one.
  const std::vector<int32_t> tokens{kEot, 1, 2, 3, kSep, 4, 5};
  EXPECT_EQ(std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + 7), tokens);
  EXPECT_EQ(r.length, 7);
  EXPECT_EQ(r.prefix, 5) << "the source and <sep> attend both ways";
  const std::vector<int32_t> targets{-1, -1, -1, -1, 4, 5, kEot, -1, -1, -1};
  EXPECT_EQ(r.targets, targets) << "only the target part (and its end) is predicted";
  const Row empty_target = FillRow(set, 1, 0);
  EXPECT_EQ(empty_target.length, 3);
  EXPECT_EQ(empty_target.prefix, 3);
  EXPECT_EQ(empty_target.targets[2], kEot) << "an empty target still learns to end";
}

TEST_F(ObjectiveExamplesTest, Seq2SeqKeepsAsMuchSourceAsTheTargetLeavesRoomFor) {
  std::vector<uint16_t> source;
  for (int i = 0; i < 30; ++i) source.push_back(static_cast<uint16_t>(100 + i));
  WriteDocuments("t_000000.bin", {Example(source, {7, 8})});
  TokenDataset data = Open("t_*.bin");
  Seq2SeqExamples set(data, 16, kEot, kSep);  // a window of 17 tokens
  const Row r = FillRow(set, 0, 0);
  // eot + 12 source tokens + sep + 2 target tokens + the end: exactly the window.
  EXPECT_EQ(r.prefix, 14);
  EXPECT_EQ(r.tokens[12], 111);
  EXPECT_EQ(r.tokens[13], kSep);
  EXPECT_EQ(r.length, 16);
  EXPECT_EQ(std::vector<int32_t>(r.targets.begin() + 13, r.targets.end()), (std::vector<int32_t>{7, 8, kEot}));
}

TEST_F(ObjectiveExamplesTest, Seq2SeqCutsALongSourceToHalfTheWindow) {
  std::vector<uint16_t> source, target;
  for (int i = 0; i < 30; ++i) source.push_back(static_cast<uint16_t>(100 + i));
  for (int i = 0; i < 30; ++i) target.push_back(static_cast<uint16_t>(200 + i));
  WriteDocuments("l_000000.bin", {Example(source, target), Example({1}, target)});
  TokenDataset data = Open("l_*.bin");
  Seq2SeqExamples set(data, 16, kEot, kSep);  // a window of 17 tokens
  const Row r = FillRow(set, 0, 0);
  EXPECT_EQ(r.prefix, 8) << "eot + 6 source tokens + sep: half the window";
  EXPECT_EQ(r.tokens[7], kSep);
  EXPECT_EQ(r.tokens[6], 105);
  EXPECT_EQ(r.length, 16);
  EXPECT_EQ(r.targets[7], 200);
  EXPECT_EQ(r.targets[15], 208) << "the target is cut at the window's end";
  const Row short_source = FillRow(set, 1, 0);
  EXPECT_EQ(short_source.prefix, 3) << "a short source is never cut";
  EXPECT_EQ(short_source.targets[15], 213);
}

TEST_F(ObjectiveExamplesTest, SamplerCarriesLengthsAndPrefixes) {
  WriteDocuments("b_000000.bin", {Example({1, 2}, {3}), Example({4}, {5, 6, 7})});
  TokenDataset data = Open("b_*.bin");
  Result<BatchSampler> sampler = BatchSampler::Create(std::make_shared<Seq2SeqExamples>(data, 8, kEot, kSep), 1);
  ASSERT_TRUE(sampler.ok()) << sampler.status().ToString();
  ExampleBatch batch;
  sampler->Next(2, &batch);
  ASSERT_TRUE(batch.lengths.defined() && batch.prefix_lengths.defined());
  std::multiset<std::pair<int, int>> got;
  for (int b = 0; b < 2; ++b) got.insert({batch.lengths.data<int32_t>()[b], batch.prefix_lengths.data<int32_t>()[b]});
  EXPECT_EQ(got, (std::multiset<std::pair<int, int>>{{5, 4}, {6, 3}}));
}

}  // namespace
}  // namespace baton
