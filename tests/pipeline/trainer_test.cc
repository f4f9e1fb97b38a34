// The single-process training step: accumulation, determinism, learning.
#include "pipeline/trainer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "runtime/rng.h"
#include "tests/test_models.h"

namespace baton {
namespace {

ModelSpec TinySpec() { return testing::TinyGpt(2, 32, 4, 64, 50, 64, 16); }

// `count` micro-batches of `batch` sequences of length 8 from stream `stream`.
std::vector<MicroBatch> Batches(int count, int batch, uint64_t stream) {
  RandomStream rng(4242, stream);
  std::vector<MicroBatch> out(count);
  for (MicroBatch& mb : out) {
    mb.tokens = Tensor::Empty({batch, 8}, DType::kI32);
    mb.targets = Tensor::Empty({batch, 8}, DType::kI32);
    for (int64_t i = 0; i < mb.tokens.numel(); ++i) {
      mb.tokens.data<int32_t>()[i] = static_cast<int32_t>(rng.Below(50));
      // A learnable rule: the next token is a function of the current one.
      mb.targets.data<int32_t>()[i] = (mb.tokens.data<int32_t>()[i] * 7 + 3) % 50;
    }
  }
  return out;
}

// Splits each sequence of `whole` into its own micro-batch of size 1.
std::vector<MicroBatch> SplitRows(const MicroBatch& whole) {
  std::vector<MicroBatch> out;
  for (int64_t b = 0; b < whole.batch(); ++b) {
    MicroBatch mb;
    mb.tokens = whole.tokens.Rows(b, b + 1).Clone();
    mb.targets = whole.targets.Rows(b, b + 1).Clone();
    out.push_back(mb);
  }
  return out;
}

TEST(Trainer, AccumulatingMicroBatchesEqualsOneBigBatch) {
  ModelSpec spec = TinySpec();
  Model a = Model::Build(spec, 3, DType::kF64), b = Model::Build(spec, 3, DType::kF64);
  Adafactor oa(AdafactorOptions{}), ob(AdafactorOptions{});
  oa.AddParams(a.params());
  ob.AddParams(b.params());
  LrScheduleOptions lr;
  Trainer ta(&a, &oa, {lr, 0}), tb(&b, &ob, {lr, 0});
  std::vector<MicroBatch> big = Batches(1, 4, 1);
  auto ra = ta.Step(1, big);
  auto rb = tb.Step(1, SplitRows(big[0]));
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_NEAR(ra->loss, rb->loss, 1e-12);
  EXPECT_NEAR(ra->grad_norm, rb->grad_norm, 1e-12);
  // Weights after the update agree to 1e-9, not to rounding: the key bias has an exactly-zero
  // true gradient (softmax ignores a shift of every score), and AdaFactor normalises its
  // round-off noise into a full-size step of alpha = eps2 * rate = 1e-5.
  for (Param* p : a.params()) {
    auto x = p->value.ToDoubles(), y = b.FindParam(p->name)->value.ToDoubles();
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], y[i], 1e-9) << p->name;
  }
}

TEST(Trainer, SameSeedSameNumbersBitwise) {
  std::vector<double> losses[2];
  for (auto& l : losses) {
    Model m = Model::Build(TinySpec(), 8);
    Adafactor opt(AdafactorOptions{});
    opt.AddParams(m.params());
    Trainer t(&m, &opt, {LrScheduleOptions{}, 1.0});
    for (int step = 1; step <= 3; ++step) l.push_back(t.Step(step, Batches(2, 2, step)).value().loss);
  }
  EXPECT_EQ(losses[0], losses[1]);
}

TEST(Trainer, LearnsADeterministicRule) {
  Model m = Model::Build(TinySpec(), 5);
  Adafactor opt(AdafactorOptions{});
  opt.AddParams(m.params());
  LrScheduleOptions lr;
  lr.kind = LrScheduleKind::kConstant;
  lr.lr = 0.05;
  Trainer t(&m, &opt, {lr, 1.0});
  const std::vector<MicroBatch> held_out = Batches(2, 4, 999);
  const double before = t.Evaluate(held_out);
  EXPECT_NEAR(before, std::log(50.0), 0.1);
  for (int step = 1; step <= 60; ++step) ASSERT_TRUE(t.Step(step, Batches(1, 8, step)).ok());
  const double after = t.Evaluate(held_out);
  EXPECT_LT(after, 0.5 * before) << "before " << before << ", after " << after;
}

TEST(Trainer, NonFiniteGradientIsAnErrorAndLeavesWeightsAlone) {
  Model m = Model::Build(TinySpec(), 5);
  Adafactor opt(AdafactorOptions{});
  opt.AddParams(m.params());
  Trainer t(&m, &opt, {LrScheduleOptions{}, 0});
  Param* w = m.FindParam("blocks.0.mlp.fc.weight");
  w->value.data<float>()[0] = NAN;
  const auto before = m.FindParam("wte")->value.ToDoubles();
  auto r = t.Step(1, Batches(1, 2, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not finite"), std::string::npos) << r.status().message();
  EXPECT_EQ(m.FindParam("wte")->value.ToDoubles(), before);
}

}  // namespace
}  // namespace baton
