// Forward values of the ops against formulas written out here from
// REFERENCE.md (the gradient checks only prove backward matches forward), and
// the fp32 kernels that train against the fp64 ones on fresh random inputs.
#include <gtest/gtest.h>

#include <cmath>

#include "layers/ops.h"
#include "tests/layers/grad_check.h"

namespace baton {
namespace {
using testing::RandomTensor;

Tensor ToF32(const Tensor& t) {
  Tensor out = Tensor::Empty(t.shape(), DType::kF32);
  for (int64_t i = 0; i < t.numel(); ++i) out.data<float>()[i] = static_cast<float>(t.data<double>()[i]);
  return out;
}

void ExpectClose(const Tensor& f32, const Tensor& f64, double rel, const char* what) {
  const auto a = f32.ToDoubles(), b = f64.ToDoubles();
  ASSERT_EQ(a.size(), b.size()) << what;
  double scale = 0;
  for (double x : b) scale = std::max(scale, std::fabs(x));
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], rel * scale) << what << " element " << i;
}

TEST(OpsForward, GeluTanhForm) {
  const std::vector<double> xs = {-3.0, -1.0, -0.5, 0.25, 1.0, 2.0};
  Tensor x = Tensor::FromVector<double>({6}, xs), y = Tensor::Empty({6}, DType::kF64);
  ops::GeluForward(x, &y);
  for (size_t i = 0; i < xs.size(); ++i) {
    const double v = xs[i];
    const double want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(y.data<double>()[i], want, 1e-15) << "x = " << v;
  }
  EXPECT_NEAR(y.data<double>()[4], 0.8411919906, 1e-9);  // GELU_tanh(1), a published value
}

TEST(OpsForward, LayerNormAndRmsNormOfAKnownRow) {
  Tensor x = Tensor::FromVector<double>({1, 4}, {1, 2, 3, 4});
  Tensor g = Tensor::FromVector<double>({4}, {1, 2, 0.5, -1}), b = Tensor::FromVector<double>({4}, {0, 1, 0, 2});
  Tensor y = Tensor::Empty({1, 4}, DType::kF64), mean = Tensor::Empty({1}, DType::kF64),
         rstd = Tensor::Empty({1}, DType::kF64);
  ops::LayerNormForward(x, g, b, 1e-5, &y, &mean, &rstd);
  const double r = 1 / std::sqrt(1.25 + 1e-5);  // mean 2.5, variance 1.25
  const double want[4] = {-1.5 * r * 1 + 0, -0.5 * r * 2 + 1, 0.5 * r * 0.5 + 0, 1.5 * r * -1 + 2};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y.data<double>()[i], want[i], 1e-12) << i;

  ops::RmsNormForward(x, g, 1e-6, &y, &rstd);
  const double rr = 1 / std::sqrt(30.0 / 4 + 1e-6);  // mean of squares 7.5
  const double want_rms[4] = {1 * rr * 1, 2 * rr * 2, 3 * rr * 0.5, 4 * rr * -1};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y.data<double>()[i], want_rms[i], 1e-12) << i;
}

TEST(OpsForward, CausalAttentionByHand) {
  // One sequence of 2 tokens, 1 head of size 2.
  Tensor q = Tensor::FromVector<double>({2, 2}, {1, 0, 0.5, -1});
  Tensor k = Tensor::FromVector<double>({2, 2}, {2, 1, -1, 3});
  Tensor v = Tensor::FromVector<double>({2, 2}, {1, 2, -3, 4});
  Tensor out = Tensor::Empty({2, 2}, DType::kF64), probs = Tensor::Empty({1, 1, 2, 2}, DType::kF64);
  ops::CausalAttentionForward(q, k, v, 2, 1, &out, &probs);
  // Token 0 sees only itself.
  EXPECT_DOUBLE_EQ(out.data<double>()[0], 1);
  EXPECT_DOUBLE_EQ(out.data<double>()[1], 2);
  // Token 1: scores q1.k0 = 0, q1.k1 = -3.5, scaled by 1/sqrt(2).
  const double s0 = 0 / std::sqrt(2.0), s1 = -3.5 / std::sqrt(2.0);
  const double p0 = std::exp(s0) / (std::exp(s0) + std::exp(s1)), p1 = 1 - p0;
  EXPECT_NEAR(out.data<double>()[2], p0 * 1 + p1 * -3, 1e-12);
  EXPECT_NEAR(out.data<double>()[3], p0 * 2 + p1 * 4, 1e-12);
  EXPECT_NEAR(probs.data<double>()[2], p0, 1e-12);
  EXPECT_EQ(probs.data<double>()[1], 0.0);  // the future is masked
}

TEST(OpsForward, EmbeddingWithPositions) {
  Tensor table = Tensor::FromVector<double>({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor pos = Tensor::FromVector<double>({2, 2}, {10, 20, 30, 40});
  Tensor ids = Tensor::FromVector<int32_t>({4}, {2, 0, 1, 1});  // two sequences of length 2
  Tensor y = Tensor::Empty({4, 2}, DType::kF64);
  ops::EmbeddingForward(ids, table, &y);
  ops::AddPositions(pos, 2, &y);
  EXPECT_EQ(y.ToDoubles(), (std::vector<double>{15, 26, 31, 42, 13, 24, 33, 44}));
}

// The fp32 kernels the CPU backend trains with agree with the fp64 ones.
TEST(OpsForward, Fp32MatchesFp64) {
  const int64_t batch = 2, seq = 8, heads = 2, hd = 8, h = heads * hd, rows = batch * seq;
  Tensor x = RandomTensor({rows, h}, 500), g = RandomTensor({h}, 501), b = RandomTensor({h}, 502);
  Tensor w = RandomTensor({3 * h, h}, 503, 0.2);
  {
    Tensor y64 = Tensor::Empty({rows, 3 * h}, DType::kF64), y32 = Tensor::Empty({rows, 3 * h}, DType::kF32);
    ops::Matmul(x, false, w, true, &y64);
    ops::Matmul(ToF32(x), false, ToF32(w), true, &y32);
    ExpectClose(y32, y64, 1e-5, "matmul");
  }
  {
    Tensor y64 = Tensor::Empty({rows, h}, DType::kF64), m64 = Tensor::Empty({rows}, DType::kF64),
           r64 = Tensor::Empty({rows}, DType::kF64);
    Tensor y32 = Tensor::Empty({rows, h}, DType::kF32), m32 = Tensor::Empty({rows}, DType::kF32),
           r32 = Tensor::Empty({rows}, DType::kF32);
    ops::LayerNormForward(x, g, b, 1e-5, &y64, &m64, &r64);
    ops::LayerNormForward(ToF32(x), ToF32(g), ToF32(b), 1e-5, &y32, &m32, &r32);
    ExpectClose(y32, y64, 1e-5, "layernorm");
    ops::RmsNormForward(x, g, 1e-6, &y64, &r64);
    ops::RmsNormForward(ToF32(x), ToF32(g), 1e-6, &y32, &r32);
    ExpectClose(y32, y64, 1e-5, "rmsnorm");
    ops::GeluForward(x, &y64);
    ops::GeluForward(ToF32(x), &y32);
    ExpectClose(y32, y64, 1e-5, "gelu");
  }
  {
    Tensor q = RandomTensor({rows, h}, 504), k = RandomTensor({rows, h}, 505), v = RandomTensor({rows, h}, 506);
    Tensor o64 = Tensor::Empty({rows, h}, DType::kF64), p64 = Tensor::Empty({batch, heads, seq, seq}, DType::kF64);
    Tensor o32 = Tensor::Empty({rows, h}, DType::kF32), p32 = Tensor::Empty({batch, heads, seq, seq}, DType::kF32);
    ops::CausalAttentionForward(q, k, v, seq, heads, &o64, &p64);
    ops::CausalAttentionForward(ToF32(q), ToF32(k), ToF32(v), seq, heads, &o32, &p32);
    ExpectClose(o32, o64, 1e-5, "attention");
    Tensor q32 = ToF32(q);
    ops::Rope(&q, seq, heads, ops::RopeStyle::kHalfSplit, 10000, false);
    ops::Rope(&q32, seq, heads, ops::RopeStyle::kHalfSplit, 10000, false);
    ExpectClose(q32, q, 1e-6, "rope");
  }
  {
    const int64_t vocab = 50, padded = 64;
    Tensor z = RandomTensor({rows, padded}, 507, 3.0);
    Tensor t = testing::RandomTokens({rows}, vocab, 508);
    Tensor l64 = Tensor::Empty({rows}, DType::kF64), l32 = Tensor::Empty({rows}, DType::kF32);
    Tensor d64 = Tensor::Empty(z.shape(), DType::kF64), d32 = Tensor::Empty(z.shape(), DType::kF32);
    ops::SoftmaxCrossEntropy(z, t, vocab, &l64, &d64, 0.1);
    ops::SoftmaxCrossEntropy(ToF32(z), t, vocab, &l32, &d32, 0.1);
    ExpectClose(l32, l64, 1e-5, "cross-entropy loss");
    ExpectClose(d32, d64, 1e-5, "cross-entropy gradient");
  }
}

}  // namespace
}  // namespace baton
