// Lossless growth, checked on the function: the grown model's logits against the
// small model's, for every family, several width factors, with and without
// symmetry-breaking noise, for depth growth, and for growth in two steps.
#include "checkpoint/model_growth.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/checkpoint/growth_test_models.h"

namespace baton {
namespace {
using testing::Family;

// |grown - small| <= tol * max(1, |small|) for every logit; returns the worst ratio.
double WorstRelativeError(const std::vector<double>& small, const std::vector<double>& grown) {
  EXPECT_EQ(small.size(), grown.size());
  double worst = 0;
  for (size_t i = 0; i < small.size() && i < grown.size(); ++i)
    worst = std::max(worst, std::fabs(grown[i] - small[i]) / std::max(1.0, std::fabs(small[i])));
  return worst;
}

GrownModel Grow(const ModelSpec& small, const ModelSpec& big, const std::map<std::string, Tensor>& params,
                double noise, DepthPlacement depth = DepthPlacement::kInterleaved) {
  GrowthOptions o;
  o.noise = noise;
  o.seed = 5;
  o.depth = depth;
  Result<GrownModel> g = GrowModel(small, big, params, {}, AdafactorOptions{}, o);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? std::move(*g) : GrownModel{};
}

TEST(ModelGrowth, WidthKeepsTheFunctionForEveryFamily) {
  for (Family f : {Family::kGpt2, Family::kGptRope, Family::kRoformer, Family::kRoformerV2}) {
    const ModelSpec small = testing::SmallSpec(f);
    const auto params = testing::RandomParams(small, 3);
    const MicroBatch mb = testing::BatchFor(f, 11);
    const std::vector<double> want = testing::Logits(small, params, mb);
    for (auto [kh, kf] : {std::pair<int64_t, int64_t>{2, 2}, {3, 3}, {2, 3}, {1, 2}}) {
      for (double noise : {0.0, 0.5}) {
        SCOPED_TRACE(std::string(testing::FamilyName(f)) + " hidden x" + std::to_string(kh) + " ffn x" +
                     std::to_string(kf) + " noise " + std::to_string(noise));
        const ModelSpec big = testing::Grown(small, kh, kf);
        const GrownModel g = Grow(small, big, params, noise);
        EXPECT_LT(WorstRelativeError(want, testing::Logits(big, g.params, mb)), 1e-5);
      }
    }
  }
}

TEST(ModelGrowth, NoiseChangesTheWeightsButNotTheFunction) {
  const ModelSpec small = testing::SmallSpec(Family::kGpt2);
  const ModelSpec big = testing::Grown(small, 2, 2);
  const auto params = testing::RandomParams(small, 4);
  const GrownModel plain = Grow(small, big, params, 0), noisy = Grow(small, big, params, 0.5);
  const std::vector<double> a = plain.params.at("blocks.0.mlp.fc.weight").ToDoubles(),
                            b = noisy.params.at("blocks.0.mlp.fc.weight").ToDoubles();
  double moved = 0;
  for (size_t i = 0; i < a.size(); ++i) moved = std::max(moved, std::fabs(a[i] - b[i]));
  EXPECT_GT(moved, 0.05);
  // Plain tiling: every block of a matrix is W / k, so the block columns are equal.
  const Tensor& w = plain.params.at("blocks.0.attn.proj.weight");
  const Tensor& w0 = params.at("blocks.0.attn.proj.weight");
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t j = 0; j < 16; ++j)
      EXPECT_EQ(w.data<float>()[i * 16 + j], w0.data<float>()[(i % 8) * 8 + j % 8] / 2) << i << "," << j;
}

TEST(ModelGrowth, PreLnDepthGrowthIsBitwise) {
  for (Family f : {Family::kGpt2, Family::kGptRope}) {
    const ModelSpec small = testing::SmallSpec(f, 3);
    const auto params = testing::RandomParams(small, 6);
    const MicroBatch mb = testing::BatchFor(f, 12);
    const std::vector<double> want = testing::Logits(small, params, mb);
    for (DepthPlacement d : {DepthPlacement::kInterleaved, DepthPlacement::kAppended}) {
      SCOPED_TRACE(std::string(testing::FamilyName(f)) + (d == DepthPlacement::kAppended ? " appended" : " interleaved"));
      for (int64_t layers : {4, 6, 7}) {
        const ModelSpec big = testing::Grown(small, 1, 1, layers);
        const GrownModel g = Grow(small, big, params, 0, d);
        EXPECT_EQ(testing::Logits(big, g.params, mb), want) << layers << " layers";
      }
      // Depth and width together: exact to rounding.
      const ModelSpec big = testing::Grown(small, 2, 2, 5);
      EXPECT_LT(WorstRelativeError(want, testing::Logits(big, Grow(small, big, params, 0.5, d).params, mb)), 1e-5);
    }
  }
  // Where the new blocks go: interleaved 3 -> 6 puts old block i at 2i.
  const ModelSpec small = testing::SmallSpec(Family::kGpt2, 3);
  const auto params = testing::RandomParams(small, 7);
  const GrownModel g = Grow(small, testing::Grown(small, 1, 1, 6), params, 0);
  EXPECT_EQ(g.params.at("blocks.4.mlp.fc.weight").ToDoubles(), params.at("blocks.2.mlp.fc.weight").ToDoubles());
  for (const char* zero : {"blocks.5.attn.proj.weight", "blocks.5.mlp.proj.bias", "blocks.1.mlp.proj.weight"})
    for (double v : g.params.at(zero).ToDoubles()) ASSERT_EQ(v, 0.0) << zero;
  EXPECT_NE(g.params.at("blocks.5.mlp.fc.weight").ToDoubles(), std::vector<double>(16 * 8, 0.0));
}

TEST(ModelGrowth, GrowingTwiceByTwoIsGrowingByFour) {
  for (Family f : {Family::kGpt2, Family::kGptRope, Family::kRoformer, Family::kRoformerV2}) {
    SCOPED_TRACE(testing::FamilyName(f));
    const ModelSpec small = testing::SmallSpec(f);
    const auto params = testing::RandomParams(small, 8);
    const ModelSpec mid = testing::Grown(small, 2, 2), big = testing::Grown(small, 4, 4);
    const GrownModel once = Grow(small, big, params, 0);
    const GrownModel twice = Grow(mid, big, Grow(small, mid, params, 0).params, 0);
    ASSERT_EQ(once.params.size(), twice.params.size());
    for (const auto& [name, t] : once.params) EXPECT_EQ(t.ToDoubles(), twice.params.at(name).ToDoubles()) << name;
    const MicroBatch mb = testing::BatchFor(f, 13);
    EXPECT_LT(WorstRelativeError(testing::Logits(small, params, mb), testing::Logits(big, once.params, mb)), 1e-5);
  }
}

// Seed's method: heads kept, head size doubled. Exact with learned positions; with RoPE
// the frequencies follow the head size, so the logits move (and the grow command says so).
TEST(ModelGrowth, SeedsMethodIsExactWithLearnedPositionsOnly) {
  for (Family f : {Family::kGpt2, Family::kGptRope, Family::kRoformer}) {
    SCOPED_TRACE(testing::FamilyName(f));
    const ModelSpec small = testing::SmallSpec(f);
    ModelSpec big = testing::Grown(small, 2, 2);
    big.heads = small.heads;
    const auto params = testing::RandomParams(small, 10);
    const MicroBatch mb = testing::BatchFor(f, 14);
    const std::vector<double> want = testing::Logits(small, params, mb);
    GrowthOptions o;
    o.method = GrowthMethod::kSeed;
    for (double noise : {0.0, 0.5}) {
      o.noise = noise;
      Result<GrownModel> g = GrowModel(small, big, params, {}, AdafactorOptions{}, o);
      ASSERT_TRUE(g.ok()) << g.status().ToString();
      const double err = WorstRelativeError(want, testing::Logits(big, g->params, mb));
      if (f == Family::kGpt2) EXPECT_LT(err, 1e-5) << "noise " << noise;
      else EXPECT_GT(err, 1e-3) << "RoPE: not exact, noise " << noise;
    }
  }
  // Head-count tiling's head rule does not apply: Seed's method wants the heads kept.
  const ModelSpec small = testing::SmallSpec(Family::kGpt2);
  EXPECT_NE(CheckGrowth(small, testing::Grown(small, 2, 2), GrowthMethod::kSeed).message().find("Seed's method keeps"),
            std::string::npos);
}

TEST(ModelGrowth, RefusalsSayWhy) {
  const ModelSpec roformer = testing::SmallSpec(Family::kRoformer);
  Status s = CheckGrowth(roformer, testing::Grown(roformer, 2, 2, 4));
  EXPECT_NE(s.message().find("post-LN"), std::string::npos) << s.message();
  ModelSpec gpt = testing::SmallSpec(Family::kGpt2);
  ModelSpec wrong_heads = testing::Grown(gpt, 2, 2);
  wrong_heads.heads = gpt.heads;  // head size would double
  s = CheckGrowth(gpt, wrong_heads);
  EXPECT_NE(s.message().find("model.heads: 2, expected 4 (head-count tiling keeps the head size 4"), std::string::npos)
      << s.message();
  ModelSpec odd = testing::Grown(gpt, 1, 1);
  odd.hidden = 12;
  odd.heads = 3;
  s = CheckGrowth(gpt, odd);
  EXPECT_NE(s.message().find("model.hidden: 12 is not a multiple of the small model's 8"), std::string::npos)
      << s.message();
  EXPECT_NE(CheckGrowth(gpt, gpt).message().find("nothing to grow"), std::string::npos);
  ModelSpec other = gpt;
  other.vocab = 12;
  EXPECT_NE(CheckGrowth(gpt, testing::Grown(other, 2, 2)).message().find("model.vocab"), std::string::npos);
}

// REFERENCE.md: each block of a widened matrix sees about G / k, so R' = repeat(R) / k and
// C' = repeat(C) / k for a matrix widened k x k; a vector's V' = repeat(V) / k^2; momentum
// is repeated.
TEST(ModelGrowth, AdafactorStateFollowsTheGradientScale) {
  const ModelSpec small = testing::SmallSpec(Family::kGpt2);
  const ModelSpec big = testing::Grown(small, 2, 2);
  const auto params = testing::RandomParams(small, 9);
  AdafactorOptions opt;
  opt.beta1 = 0.9;
  std::map<std::string, Tensor> state;
  RandomStream rng(9, 1);
  auto positive = [&](Shape shape) {
    Tensor t = Tensor::Empty(shape, DType::kF32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(0.1 + rng.Uniform());
    return t;
  };
  for (const auto& [name, p] : params) {
    AdafactorState s = NewAdafactorState(opt, p.shape(), DType::kF32);
    if (s.factored) {  // R and C sum the same matrix: equal totals
      Tensor row = positive(s.row.shape()), col = positive(s.col.shape());
      double rs = 0, cs = 0;
      for (int64_t i = 0; i < row.numel(); ++i) rs += row.data<float>()[i];
      for (int64_t i = 0; i < col.numel(); ++i) cs += col.data<float>()[i];
      for (int64_t i = 0; i < col.numel(); ++i) col.data<float>()[i] = static_cast<float>(col.data<float>()[i] * rs / cs);
      state["adafactor/" + name + "/row"] = row;
      state["adafactor/" + name + "/col"] = col;
    } else {
      state["adafactor/" + name + "/full"] = positive(s.full.shape());
    }
    state["adafactor/" + name + "/momentum"] = positive(p.shape());
  }
  Result<GrownModel> g = GrowModel(small, big, params, state, opt, GrowthOptions{});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const auto& a = g->adafactor;
  // attn.proj [8, 8] -> [16, 16].
  const Tensor& r = state.at("adafactor/blocks.0.attn.proj.weight/row");
  const Tensor& c = state.at("adafactor/blocks.0.attn.proj.weight/col");
  for (int64_t i = 0; i < 16; ++i) {
    EXPECT_NEAR(a.at("adafactor/blocks.0.attn.proj.weight/row").data<float>()[i], r.data<float>()[i % 8] / 2, 1e-6);
    EXPECT_NEAR(a.at("adafactor/blocks.0.attn.proj.weight/col").data<float>()[i], c.data<float>()[i % 8] / 2, 1e-6);
  }
  // A bias: V / 4; the final norm's gain: unchanged (its gradient is not divided).
  const Tensor& v = state.at("adafactor/blocks.1.mlp.proj.bias/full");
  const Tensor& ln = state.at("adafactor/ln_f.weight/full");
  for (int64_t i = 0; i < 16; ++i) {
    EXPECT_FLOAT_EQ(a.at("adafactor/blocks.1.mlp.proj.bias/full").data<float>()[i], v.data<float>()[i % 8] / 4);
    EXPECT_FLOAT_EQ(a.at("adafactor/ln_f.weight/full").data<float>()[i], ln.data<float>()[i % 8]);
  }
  // Momentum of a matrix: repeated in every block.
  const Tensor& m = state.at("adafactor/blocks.0.mlp.fc.weight/momentum");
  const Tensor& gm = a.at("adafactor/blocks.0.mlp.fc.weight/momentum");
  ASSERT_EQ(gm.shape(), (Shape{32, 16}));
  for (int64_t i = 0; i < 32; ++i)
    for (int64_t j = 0; j < 16; ++j) ASSERT_EQ(gm.data<float>()[i * 16 + j], m.data<float>()[(i % 16) * 8 + j % 8]);
  // Every grown parameter has its state, nothing else.
  for (const auto& [name, t] : g->params) EXPECT_TRUE(a.count("adafactor/" + name + "/momentum")) << name;
}

}  // namespace
}  // namespace baton
