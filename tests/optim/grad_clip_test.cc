#include "optim/grad_clip.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "runtime/rng.h"

namespace baton {
namespace {

struct Fixture {
  std::unique_ptr<Param> a, b;
  std::vector<double> ga, gb;
  double norm = 0;  // computed here from the drawn values
  std::vector<Param*> params() { return {a.get(), b.get()}; }
};

// Two parameters of different dtypes with fresh random non-zero gradients.
Fixture Make() {
  Fixture f;
  f.a = std::make_unique<Param>("a", Tensor::Zeros({3, 4}, DType::kF32));
  f.b = std::make_unique<Param>("b", Tensor::Zeros({5}, DType::kF64));
  std::vector<float> ga;
  for (int i = 0; i < 12; ++i) ga.push_back(static_cast<float>(1.0 + NormalAt(7, StreamId("clip.a"), i) * 0.1));
  for (int i = 0; i < 5; ++i) f.gb.push_back(-2.0 + NormalAt(7, StreamId("clip.b"), i) * 0.1);
  f.ga.assign(ga.begin(), ga.end());
  f.a->grad.CopyFrom(Tensor::FromVector<float>({3, 4}, ga));
  f.b->grad.CopyFrom(Tensor::FromVector<double>({5}, f.gb));
  double s = 0;
  for (double v : f.ga) s += v * v;
  for (double v : f.gb) s += v * v;
  f.norm = std::sqrt(s);
  return f;
}

TEST(GradClip, SquaredNorm) {
  Fixture f = Make();
  EXPECT_NEAR(SquaredGradNorm(f.params()), f.norm * f.norm, 1e-12 * f.norm * f.norm);
}

TEST(GradClip, ClipsToMaxNorm) {
  Fixture f = Make();
  const double max_norm = f.norm / 3;
  EXPECT_NEAR(ClipGradNorm(f.params(), max_norm), f.norm, 1e-12 * f.norm);  // pre-clip norm
  EXPECT_NEAR(std::sqrt(SquaredGradNorm(f.params())), max_norm, 1e-6 * max_norm);
  const auto a = f.a->grad.ToDoubles(), b = f.b->grad.ToDoubles();
  for (int i = 0; i < 12; ++i) EXPECT_NEAR(a[i], f.ga[i] / 3, 1e-6);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(b[i], f.gb[i] / 3, 1e-12);
}

TEST(GradClip, NoClipBelowMaxOrWhenDisabled) {
  for (double max_norm : {0.0, -1.0, 1e9}) {
    Fixture f = Make();
    EXPECT_NEAR(ClipGradNorm(f.params(), max_norm), f.norm, 1e-12 * f.norm);
    EXPECT_EQ(f.a->grad.ToDoubles(), f.ga);
    EXPECT_EQ(f.b->grad.ToDoubles(), f.gb);
  }
}

TEST(GradClip, ScaleAndFactor) {
  Fixture f = Make();
  ScaleGrads(f.params(), -0.5);
  EXPECT_EQ(f.b->grad.ToDoubles()[2], -0.5 * f.gb[2]);
  EXPECT_DOUBLE_EQ(ClipFactor(4.0, 1.0), 0.25);
  EXPECT_DOUBLE_EQ(ClipFactor(0.5, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(ClipFactor(4.0, 0.0), 1.0);
}

}  // namespace
}  // namespace baton
