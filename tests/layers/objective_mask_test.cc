// What each position of a whole model may depend on, under the masks the
// objectives build: UniLM seq2seq (a bidirectional source, a causal target)
// and masked LM (bidirectional), with padded examples. Checked on the output of
// the last block by changing one input token at a time, in fp64.
#include <gtest/gtest.h>

#include "layers/model.h"
#include "tests/test_models.h"

namespace baton {
namespace {

constexpr int64_t kBatch = 2, kSeq = 8, kVocab = 13;

// The model without its loss head: [batch * seq, hidden] after the last block.
Tensor Hidden(const Model& body, const MicroBatch& mb) {
  Tensor x;
  for (const auto& layer : body.layers()) x = layer->Forward(mb, x, nullptr);
  return x;
}

MicroBatch Batch(std::vector<int32_t> lengths, std::vector<int32_t> prefixes) {
  MicroBatch mb = testing::RandomMicroBatches(5, 1, 1, kBatch, kSeq, kVocab)[0];
  mb.mask.lengths = Tensor::FromVector<int32_t>({kBatch}, lengths);
  mb.mask.prefix_lengths = Tensor::FromVector<int32_t>({kBatch}, prefixes);
  return mb;
}

// Which rows of the output change when token (b, pos) changes.
std::vector<bool> ChangedRows(const Model& body, const MicroBatch& mb, int64_t b, int64_t pos) {
  const std::vector<double> before = Hidden(body, mb).ToDoubles();
  MicroBatch changed = mb;
  changed.tokens = mb.tokens.Clone();
  int32_t& t = changed.tokens.data<int32_t>()[b * kSeq + pos];
  t = (t + 1 + static_cast<int32_t>(pos)) % kVocab;
  const std::vector<double> after = Hidden(body, changed).ToDoubles();
  const int64_t h = body.spec().hidden;
  std::vector<bool> rows(kBatch * kSeq, false);
  for (int64_t r = 0; r < kBatch * kSeq; ++r)
    for (int64_t c = 0; c < h; ++c) rows[r] = rows[r] || before[r * h + c] != after[r * h + c];
  return rows;
}

Model Body(bool v2) {
  ModelSpec spec = testing::TinyRoformer(v2, 2, 8, 2, 12, kVocab, 16, kSeq);
  spec.init_std = 0.3;
  return Model::Build(spec, 9, DType::kF64, Device::CPU(), 0, spec.list_size() - 1);
}

// UniLM: a source token reaches every real position of its example; a target token
// at t reaches target positions >= t only, never the source or earlier targets; a
// padding token reaches nothing real; the other example never changes. (Padding rows
// themselves attend to the real tokens; they have no targets, so nothing reads them.)
TEST(ObjectiveMask, Seq2SeqTargetNeverReachesSourceOrEarlierTargets) {
  for (const bool v2 : {false, true}) {
    SCOPED_TRACE(v2 ? "RoFormerV2" : "RoFormer");
    const Model body = Body(v2);
    const std::vector<int32_t> lengths{8, 6}, prefixes{3, 4};
    const MicroBatch mb = Batch(lengths, prefixes);
    for (int64_t b = 0; b < kBatch; ++b) {
      for (int64_t pos = 0; pos < kSeq; ++pos) {
        const std::vector<bool> changed = ChangedRows(body, mb, b, pos);
        for (int64_t q = 0; q < kSeq; ++q) {
          EXPECT_FALSE(changed[(1 - b) * kSeq + q]) << "example " << b << " token " << pos << " leaked into the other";
          if (q >= lengths[b]) continue;  // padding rows: no target reads them
          const bool may = pos < lengths[b] && (pos < prefixes[b] || pos <= q);
          // Rows that may depend on the token must (generic weights); the rest must not.
          EXPECT_EQ(changed[b * kSeq + q], may) << "example " << b << ": token " << pos << " -> output " << q;
        }
      }
    }
  }
}

// Masked LM: every real token reaches every real position (both directions); a padding
// token reaches none.
TEST(ObjectiveMask, MaskedLmEveryPositionSeesEveryRealPosition) {
  const Model body = Body(false);
  const std::vector<int32_t> lengths{8, 5};
  const MicroBatch mb = Batch(lengths, {kSeq, kSeq});
  for (int64_t b = 0; b < kBatch; ++b) {
    for (int64_t pos = 0; pos < kSeq; ++pos) {
      const std::vector<bool> changed = ChangedRows(body, mb, b, pos);
      for (int64_t q = 0; q < lengths[b]; ++q)
        EXPECT_EQ(changed[b * kSeq + q], pos < lengths[b]) << "example " << b << ": token " << pos << " -> output " << q;
    }
  }
}

}  // namespace
}  // namespace baton
