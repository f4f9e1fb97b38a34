// Whole layers (block, embedding, loss head) and a whole tiny model against
// finite differences in float64, through the Layer interface the pipeline uses.
#include <gtest/gtest.h>

#include "layers/embedding_layer.h"
#include "layers/loss_head.h"
#include "layers/model.h"
#include "layers/post_norm_block.h"
#include "layers/transformer_block.h"
#include "tests/layers/grad_check.h"
#include "tests/test_models.h"

namespace baton {
namespace {
using testing::Dot;
using testing::ExpectGradientMatches;
using testing::RandomTensor;
using testing::RandomTokens;

ModelSpec TinySpec(PositionKind positions) {
  ModelSpec s = testing::TinyGpt(2, 8, 2, 12, 13, 16, 8, positions);
  s.init_std = 0.3;  // large enough that every path carries signal
  return s;
}

ModelSpec TinyRoformerSpec(bool v2) {
  ModelSpec s = testing::TinyRoformer(v2, 2, 8, 2, 12, 13, 16, 8);
  s.init_std = 0.3;
  return s;
}

MicroBatch RandomBatch(const ModelSpec& s, int64_t batch, int64_t seq, uint64_t stream) {
  MicroBatch mb;
  mb.tokens = RandomTokens({batch, seq}, s.vocab, stream);
  mb.targets = RandomTokens({batch, seq}, s.vocab, stream + 1);
  mb.loss_scale = 1.0 / static_cast<double>(batch * seq);
  return mb;
}

// A masked-LM (or UniLM) micro-batch from the shared test generator: padded rows,
// per-example masks, positions without targets.
MicroBatch RandomMaskedBatch(const ModelSpec& s, int64_t batch, int64_t seq, uint64_t stream,
                             testing::RandomObjective objective) {
  MicroBatch mb = testing::RandomMaskedMicroBatches(3, stream, 1, batch, seq, s.vocab, objective)[0];
  mb.loss_scale = 1.0 / static_cast<double>(mb.LossTargets());
  return mb;
}

// Perturbs norm gains/biases away from 1/0 so their gradients are generic.
void Jitter(const std::vector<Param*>& params, uint64_t stream) {
  for (Param* p : params) {
    Tensor noise = RandomTensor(p->value.shape(), stream++, 0.2);
    for (int64_t i = 0; i < p->value.numel(); ++i) p->value.data<double>()[i] += noise.data<double>()[i];
  }
}

// A block's dx and every parameter's gradient (B, then W) against finite differences of
// <forward(x), r> on 2 sequences of 5, with x and r drawn from `stream`.
void ExpectBlockGradients(const ModelSpec& spec, Layer* block, uint64_t stream, const ops::AttentionMask& mask = {}) {
  MicroBatch mb = RandomBatch(spec, 2, 5, stream);
  mb.mask = mask;
  Tensor x = RandomTensor({10, spec.hidden}, stream + 1), r = RandomTensor({10, spec.hidden}, stream + 2);
  auto objective = [&] { return Dot(block->Forward(mb, x, nullptr), r); };
  std::unique_ptr<LayerActivations> saved;
  block->Forward(mb, x, &saved);
  Tensor dx = block->BackwardInput(mb, r, saved.get());
  block->BackwardWeight(mb, saved.get());
  ExpectGradientMatches(block->name() + " dx", x, dx, objective);
  for (Param* p : block->params()) ExpectGradientMatches(p->name, p->value, p->grad, objective);
}

// The head's dx and every parameter's gradient on 300 rows (more than one chunk of its
// row loop), with about a third of the positions without a target.
void ExpectLossHeadGradients(const ModelSpec& spec) {
  Model model = Model::Build(spec, 7, DType::kF64, Device::CPU(), spec.list_size() - 1);
  Layer& head = *model.layers()[0];
  Jitter(head.params(), 200);
  MicroBatch mb = RandomBatch(spec, 60, 5, 60);
  Tensor skip = RandomTensor({300}, 62);
  for (int64_t i = 0; i < 300; ++i)
    if (skip.data<double>()[i] > 0.4) mb.targets.data<int32_t>()[i] = kIgnoreTarget;
  mb.loss_scale = 1.0 / static_cast<double>(mb.LossTargets());
  Tensor x = RandomTensor({300, spec.hidden}, 61);
  auto objective = [&] { return mb.loss_scale * head.Forward(mb, x, nullptr).data<double>()[0]; };
  std::unique_ptr<LayerActivations> saved;
  head.Forward(mb, x, &saved);
  Tensor dx = head.BackwardInput(mb, Tensor(), saved.get());
  head.BackwardWeight(mb, saved.get());
  model.FoldTiedGradients();
  ExpectGradientMatches("head dx", x, dx, objective, 100);
  for (Param* p : head.params()) ExpectGradientMatches(p->name, p->value, p->grad, objective, 100);
  // Rows without a target get exactly zero input gradient.
  for (int64_t i = 0; i < 300; ++i) {
    if (mb.targets.data<int32_t>()[i] != kIgnoreTarget) continue;
    for (int64_t c = 0; c < spec.hidden; ++c) ASSERT_EQ(dx.data<double>()[i * spec.hidden + c], 0.0) << "row " << i;
  }
  // Padded vocabulary rows of the tied table get no gradient from the loss.
  Param* wte = model.FindParam("wte");
  for (int64_t row = spec.vocab; row < spec.padded_vocab; ++row)
    for (int64_t c = 0; c < spec.hidden; ++c) EXPECT_EQ(wte->grad.data<double>()[row * spec.hidden + c], 0.0);
}

TEST(LayerGrad, TransformerBlockLearnedAndRope) {
  for (auto positions : {PositionKind::kLearned, PositionKind::kRope}) {
    ModelSpec spec = TinySpec(positions);
    Model model = Model::Build(spec, 7, DType::kF64, Device::CPU(), 1, 2);  // just blocks.0
    Layer& block = *model.layers()[0];
    Jitter(block.params(), 100);
    ExpectBlockGradients(spec, &block, 40);
  }
}

// RoFormer's post-LN block (LayerNorm, biases) and RoFormerV2's (parameter-free RMS norm,
// no biases), interleaved RoPE, under a UniLM mask with a padded row (example 0: 4 real
// positions, source 2; example 1: bidirectional over all 5): dx and every parameter's
// gradient against finite differences, through B and W.
TEST(LayerGrad, PostNormBlockRoFormerAndV2) {
  for (const bool v2 : {false, true}) {
    SCOPED_TRACE(v2 ? "RoFormerV2" : "RoFormer");
    ModelSpec spec = TinySpec(PositionKind::kRope);
    spec.rope_style = ops::RopeStyle::kInterleaved;
    spec.norm = v2 ? NormKind::kRmsNormNoGain : NormKind::kLayerNorm;
    spec.biases = !v2;
    PostNormBlock block(spec, 0, DType::kF64, Device::CPU());
    uint64_t stream = 300;
    for (Param* p : block.params()) {  // random weights; norm gains around 1
      const bool gain = p->name.find(".ln") != std::string::npos && p->name.find("weight") != std::string::npos;
      Tensor r = RandomTensor(p->value.shape(), stream++, gain ? 0.2 : 0.4);
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.data<double>()[i] = r.data<double>()[i] + (gain ? 1 : 0);
      p->grad.SetZero();
    }
    EXPECT_EQ(block.params().size(), v2 ? 4u : 12u);  // 4 weights (+ 4 biases, 2 gains and 2 norm biases)
    ops::AttentionMask mask;
    mask.lengths = Tensor::FromVector<int32_t>({2}, {4, 5});
    mask.prefix_lengths = Tensor::FromVector<int32_t>({2}, {2, 5});
    ExpectBlockGradients(spec, &block, 340, mask);
  }
}

// The embedding layer's parameter gradients (through B and W) against finite differences
// of <forward, r> on 3 sequences of 4.
void ExpectEmbeddingGradients(const ModelSpec& spec, Layer* emb, uint64_t stream) {
  MicroBatch mb = RandomBatch(spec, 3, 4, stream);
  Tensor r = RandomTensor({12, spec.hidden}, stream + 1);
  auto objective = [&] { return Dot(emb->Forward(mb, Tensor(), nullptr), r); };
  std::unique_ptr<LayerActivations> saved;
  emb->Forward(mb, Tensor(), &saved);
  EXPECT_FALSE(emb->BackwardInput(mb, r, saved.get()).defined());
  emb->BackwardWeight(mb, saved.get());
  for (Param* p : emb->params()) ExpectGradientMatches(p->name, p->value, p->grad, objective, 200);
}

TEST(LayerGrad, EmbeddingWithPositions) {
  ModelSpec spec = TinySpec(PositionKind::kLearned);
  Model model = Model::Build(spec, 7, DType::kF64, Device::CPU(), 0, 1);
  ExpectEmbeddingGradients(spec, model.layers()[0].get(), 50);
}

// RoFormer's embedding: token table, then LayerNorm (RoFormer) or parameter-free RMS
// norm (RoFormerV2); the norm's gradient flows into the table in W.
TEST(LayerGrad, EmbeddingWithNorm) {
  for (const bool v2 : {false, true}) {
    SCOPED_TRACE(v2 ? "RoFormerV2" : "RoFormer");
    ModelSpec spec = TinyRoformerSpec(v2);
    Model model = Model::Build(spec, 7, DType::kF64, Device::CPU(), 0, 1);
    Jitter(model.layers()[0]->params(), 150);
    EXPECT_EQ(model.layers()[0]->params().size(), v2 ? 1u : 3u);  // wte (+ ln_emb.weight, ln_emb.bias)
    ExpectEmbeddingGradients(spec, model.layers()[0].get(), 52);
  }
}

// Every head kind: GPT-2's final norm, RoFormer's MLM transform (dense, GELU, LayerNorm)
// with a vocabulary bias, RoFormerV2's bare tied output; a third of the positions have
// no target (they must add nothing to the loss or any gradient).
TEST(LayerGrad, LossHeadKindsTiedChunkedWithIgnoredTargets) {
  for (const int kind : {0, 1, 2}) {
    const ModelSpec spec = kind == 0 ? TinySpec(PositionKind::kLearned) : TinyRoformerSpec(kind == 2);
    SCOPED_TRACE(spec.family);
    ExpectLossHeadGradients(spec);
  }
}

TEST(LayerGrad, IgnoredTargetsAddNothing) {
  ModelSpec spec = TinyRoformerSpec(false);
  Model model = Model::Build(spec, 7, DType::kF64, Device::CPU(), spec.list_size() - 1);
  Layer& head = *model.layers()[0];
  MicroBatch mb = RandomBatch(spec, 4, 5, 64);
  Tensor x = RandomTensor({20, spec.hidden}, 65);
  const double all = head.Forward(mb, x, nullptr).data<double>()[0];
  // Ignoring a position removes exactly its loss: compute it alone.
  int32_t* t = mb.targets.data<int32_t>();
  MicroBatch only = mb;
  only.targets = mb.targets.Clone();
  for (int64_t i = 0; i < 20; ++i) only.targets.data<int32_t>()[i] = i == 7 ? t[7] : kIgnoreTarget;
  const double seventh = head.Forward(only, x, nullptr).data<double>()[0];
  EXPECT_GT(seventh, 0.0);
  t[7] = kIgnoreTarget;
  EXPECT_NEAR(head.Forward(mb, x, nullptr).data<double>()[0], all - seventh, 1e-12 * all);
  EXPECT_EQ(mb.LossTargets(), 19);
}

// GPT-2 and GPT+RoPE on causal LM; RoFormer on masked LM and RoFormerV2 on UniLM
// seq2seq, with padded rows.
TEST(LayerGrad, WholeModelThroughTheLayerList) {
  for (int kind = 0; kind < 4; ++kind) {
    const ModelSpec spec = kind < 2 ? TinySpec(kind == 0 ? PositionKind::kLearned : PositionKind::kRope)
                                    : TinyRoformerSpec(kind == 3);
    SCOPED_TRACE(spec.family + (kind == 1 ? " RoPE" : ""));
    Model model = Model::Build(spec, 11, DType::kF64);
    Jitter(model.params(), 300);
    MicroBatch mb = kind < 2 ? RandomBatch(spec, 2, 6, 70)
                             : RandomMaskedBatch(spec, 2, 6, 70,
                                                 kind == 2 ? testing::RandomObjective::kMaskedLm
                                                           : testing::RandomObjective::kSeq2Seq);
    auto objective = [&] {
      Tensor x;
      for (const auto& layer : model.layers()) x = layer->Forward(mb, x, nullptr);
      return mb.loss_scale * x.data<double>()[0];
    };
    std::vector<std::unique_ptr<LayerActivations>> saved(model.layers().size());
    Tensor x;
    for (size_t i = 0; i < model.layers().size(); ++i) x = model.layers()[i]->Forward(mb, x, &saved[i]);
    Tensor g;
    for (size_t i = model.layers().size(); i-- > 0;) {
      g = model.layers()[i]->BackwardInput(mb, g, saved[i].get());
      model.layers()[i]->BackwardWeight(mb, saved[i].get());
    }
    model.FoldTiedGradients();
    // wte collects gradient from both the embedding and the tied head.
    for (Param* p : model.params()) ExpectGradientMatches(p->name, p->value, p->grad, objective, 48);
  }
}

}  // namespace
}  // namespace baton
