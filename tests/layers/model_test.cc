// Properties of the assembled GPT models.
#include <gtest/gtest.h>

#include <cmath>

#include "layers/model.h"
#include "tests/layers/grad_check.h"
#include "tests/test_models.h"

namespace baton {
namespace {

ModelSpec SmallGpt(PositionKind positions) { return testing::TinyGpt(2, 64, 4, 256, 1000, 1024, 32, positions); }

double MeanLoss(const Model& model, const MicroBatch& mb) {
  Tensor x;
  for (const auto& layer : model.layers()) x = layer->Forward(mb, x, nullptr);
  return x.data<double>()[0] / static_cast<double>(mb.tokens.numel());
}

TEST(Model, LossAtInitIsNearLogVocab) {
  for (auto positions : {PositionKind::kLearned, PositionKind::kRope}) {
    ModelSpec spec = SmallGpt(positions);
    Model model = Model::Build(spec, 5);
    MicroBatch mb;
    mb.tokens = testing::RandomTokens({4, 32}, spec.vocab, 80);
    mb.targets = testing::RandomTokens({4, 32}, spec.vocab, 81);
    // Small init -> nearly uniform predictions over the real vocabulary (not the padded one).
    EXPECT_NEAR(MeanLoss(model, mb), std::log(spec.vocab), 0.05);
  }
}

TEST(Model, InitDoesNotDependOnWhichLayersAreBuilt) {
  ModelSpec spec = SmallGpt(PositionKind::kLearned);
  Model whole = Model::Build(spec, 9);
  Model first = Model::Build(spec, 9, DType::kF32, Device::CPU(), 0, 2);
  Model last = Model::Build(spec, 9, DType::kF32, Device::CPU(), 2);
  for (const Model* part : {&first, &last})
    for (Param* p : part->params()) {
      Param* q = whole.FindParam(p->name);
      ASSERT_NE(q, nullptr) << p->name;
      EXPECT_EQ(p->value.ToDoubles(), q->value.ToDoubles()) << p->name;
    }
  // Both ends hold the tied table, with the same values.
  EXPECT_NE(first.FindParam("wte"), nullptr);
  EXPECT_NE(last.FindParam("wte"), nullptr);
}

TEST(Model, CausalityFutureTokensDoNotChangeEarlierLosses) {
  ModelSpec spec = SmallGpt(PositionKind::kRope);
  spec.init_std = 0.2;
  Model model = Model::Build(spec, 3);
  MicroBatch a;
  a.tokens = testing::RandomTokens({1, 16}, spec.vocab, 90);
  a.targets = testing::RandomTokens({1, 16}, spec.vocab, 91);
  MicroBatch b = a;
  b.tokens = a.tokens.Clone();
  b.tokens.data<int32_t>()[15] = (b.tokens.data<int32_t>()[15] + 1) % spec.vocab;
  // Hidden states entering the head: every position but the last must agree.
  auto hidden = [&](const MicroBatch& mb) {
    Tensor x;
    for (size_t i = 0; i + 1 < model.layers().size(); ++i) x = model.layers()[i]->Forward(mb, x, nullptr);
    return x.ToDoubles();
  };
  auto ha = hidden(a), hb = hidden(b);
  const size_t h = static_cast<size_t>(spec.hidden);
  for (size_t i = 0; i < 15 * h; ++i) ASSERT_EQ(ha[i], hb[i]) << "position " << i / h;
  bool last_changed = false;
  for (size_t i = 15 * h; i < 16 * h; ++i) last_changed |= ha[i] != hb[i];
  EXPECT_TRUE(last_changed);
}

TEST(Model, ParameterCountMatchesTheBuiltModel) {
  for (auto positions : {PositionKind::kLearned, PositionKind::kRope}) {
    ModelSpec spec = SmallGpt(positions);
    Model model = Model::Build(spec, 1);
    int64_t n = 0;
    for (Param* p : model.params()) n += p->value.numel();
    EXPECT_EQ(n, spec.ParameterCount());
  }
  // GPT-2 124M with the vocabulary padded to 50304: 124,475,904 parameters (an independent
  // count: 50304*768 + 1024*768 + 12*(12*768^2 + 13*768) + 2*768).
  ModelSpec gpt2;
  EXPECT_EQ(gpt2.ParameterCount(), 124475904);
}

}  // namespace
}  // namespace baton
