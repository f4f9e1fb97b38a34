// Backward of every op against central finite differences in float64.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>

#include "layers/ops.h"
#include "tests/layers/grad_check.h"

namespace baton {
namespace {
using testing::Dot;
using testing::ExpectGradientMatches;
using testing::RandomTensor;

TEST(OpsGrad, LayerNorm) {
  const int64_t rows = 5, cols = 12;
  Tensor x = RandomTensor({rows, cols}, 1), g = RandomTensor({cols}, 2), b = RandomTensor({cols}, 3);
  Tensor r = RandomTensor({rows, cols}, 4);
  auto objective = [&] {
    Tensor y = Tensor::Empty({rows, cols}, DType::kF64), mean = Tensor::Empty({rows}, DType::kF64),
           rstd = Tensor::Empty({rows}, DType::kF64);
    ops::LayerNormForward(x, g, b, 1e-5, &y, &mean, &rstd);
    return Dot(y, r);
  };
  Tensor y = Tensor::Empty({rows, cols}, DType::kF64), mean = Tensor::Empty({rows}, DType::kF64),
         rstd = Tensor::Empty({rows}, DType::kF64);
  ops::LayerNormForward(x, g, b, 1e-5, &y, &mean, &rstd);
  Tensor dx = Tensor::Empty({rows, cols}, DType::kF64), dg = Tensor::Zeros({cols}, DType::kF64),
         db = Tensor::Zeros({cols}, DType::kF64);
  ops::LayerNormBackward(r, x, g, mean, rstd, &dx, &dg, &db);
  ExpectGradientMatches("layernorm dx", x, dx, objective);
  ExpectGradientMatches("layernorm dgain", g, dg, objective);
  ExpectGradientMatches("layernorm dbias", b, db, objective);
}

TEST(OpsGrad, RmsNormWithAndWithoutGain) {
  const int64_t rows = 4, cols = 10;
  Tensor x = RandomTensor({rows, cols}, 5), g = RandomTensor({cols}, 6), r = RandomTensor({rows, cols}, 7);
  for (bool with_gain : {true, false}) {
    Tensor gain = with_gain ? g : Tensor();
    auto objective = [&] {
      Tensor y = Tensor::Empty({rows, cols}, DType::kF64), rstd = Tensor::Empty({rows}, DType::kF64);
      ops::RmsNormForward(x, gain, 1e-6, &y, &rstd);
      return Dot(y, r);
    };
    Tensor y = Tensor::Empty({rows, cols}, DType::kF64), rstd = Tensor::Empty({rows}, DType::kF64);
    ops::RmsNormForward(x, gain, 1e-6, &y, &rstd);
    Tensor dx = Tensor::Empty({rows, cols}, DType::kF64), dg = Tensor::Zeros({cols}, DType::kF64);
    ops::RmsNormBackward(r, x, gain, rstd, &dx, with_gain ? &dg : nullptr);
    ExpectGradientMatches(with_gain ? "rmsnorm dx" : "rmsnorm (no gain) dx", x, dx, objective);
    if (with_gain) ExpectGradientMatches("rmsnorm dgain", g, dg, objective);
  }
}

TEST(OpsGrad, Gelu) {
  Tensor x = RandomTensor({7, 9}, 8, 2.0), r = RandomTensor({7, 9}, 9);
  auto objective = [&] {
    Tensor y = Tensor::Empty(x.shape(), DType::kF64);
    ops::GeluForward(x, &y);
    return Dot(y, r);
  };
  Tensor dx = Tensor::Empty(x.shape(), DType::kF64);
  ops::GeluBackward(r, x, &dx);
  ExpectGradientMatches("gelu", x, dx, objective);
}

// d(out . r)/d(qkv) of attention under `mask`, against finite differences at every
// element of the packed qkv ([rows, 3 hidden]: q, k and v blocks read in place).
void CheckAttentionGradients(const std::string& what, const ops::AttentionMask& mask, int64_t batch, uint64_t seed) {
  const int64_t seq = 5, heads = 3, head_dim = 4, cols = heads * head_dim;
  Tensor qkv = RandomTensor({batch * seq, 3 * cols}, seed), r = RandomTensor({batch * seq, cols}, seed + 3);
  auto forward = [&](Tensor* out, Tensor* lse) { ops::AttentionForward(qkv, seq, heads, mask, out, lse); };
  auto objective = [&] {
    Tensor out = Tensor::Empty(r.shape(), DType::kF64), lse = Tensor::Empty({batch, heads, seq}, DType::kF64);
    forward(&out, &lse);
    return Dot(out, r);
  };
  Tensor out = Tensor::Empty(r.shape(), DType::kF64), lse = Tensor::Empty({batch, heads, seq}, DType::kF64);
  forward(&out, &lse);
  Tensor d_qkv = Tensor::Empty(qkv.shape(), DType::kF64);  // NaN: every element must be written
  std::fill(d_qkv.data<double>(), d_qkv.data<double>() + d_qkv.numel(), std::numeric_limits<double>::quiet_NaN());
  ops::AttentionBackward(r, qkv, out, lse, seq, heads, mask, &d_qkv);
  ExpectGradientMatches(what + " d_qkv", qkv, d_qkv, objective, static_cast<int>(qkv.numel()));
}

TEST(OpsGrad, CausalAttention) { CheckAttentionGradients("causal attention", ops::AttentionMask::Causal(), 2, 10); }

TEST(OpsGrad, BidirectionalAttention) {
  ops::AttentionMask mask;
  mask.prefix = 1000;  // >= seq: every query sees every key
  CheckAttentionGradients("bidirectional attention", mask, 2, 30);
}

TEST(OpsGrad, UniLmAttentionWithPadding) {
  // Example 0: source of 2, target to the end; example 1: source of 3, 1 padding token;
  // example 2: source of 1, 2 padding tokens (seq is 5).
  ops::AttentionMask mask;
  mask.prefix_lengths = Tensor::FromVector<int32_t>({3}, {2, 3, 1});
  mask.lengths = Tensor::FromVector<int32_t>({3}, {5, 4, 3});
  CheckAttentionGradients("UniLM attention", mask, 3, 40);
}

// Rotating a column range (here the middle third of each row, 2 heads of 4): the
// backward is the inverse rotation of the same range, and the identity elsewhere.
TEST(OpsGrad, RopeBothStyles) {
  const int64_t seq = 6, head_dim = 4, cols = 8;
  for (auto style : {ops::RopeStyle::kInterleaved, ops::RopeStyle::kHalfSplit}) {
    Tensor x = RandomTensor({2 * seq, 3 * cols}, 14), r = RandomTensor({2 * seq, 3 * cols}, 15);
    auto objective = [&] {
      Tensor y = x.Clone();
      ops::Rope(&y, cols, cols, seq, head_dim, style, 10000, false);
      return Dot(y, r);
    };
    Tensor dx = r.Clone();
    ops::Rope(&dx, cols, cols, seq, head_dim, style, 10000, true);  // backward = inverse rotation of dy
    ExpectGradientMatches("rope", x, dx, objective, static_cast<int>(x.numel()));
  }
}

TEST(OpsGrad, SoftmaxCrossEntropyIgnoresPaddedVocab) {
  const int64_t rows = 6, vocab = 11, padded = 16;
  Tensor z = RandomTensor({rows, padded}, 16, 3.0);
  Tensor targets = testing::RandomTokens({rows}, vocab, 17);
  const double scale = 0.37;
  auto objective = [&] {
    Tensor losses = Tensor::Empty({rows}, DType::kF64);
    ops::SoftmaxCrossEntropy(z, targets, vocab, &losses, nullptr, 1.0);
    double s = 0;
    for (double l : losses.ToDoubles()) s += l;
    return scale * s;
  };
  Tensor losses = Tensor::Empty({rows}, DType::kF64), dz = Tensor::Empty(z.shape(), DType::kF64);
  ops::SoftmaxCrossEntropy(z, targets, vocab, &losses, &dz, scale);
  ExpectGradientMatches("cross-entropy dlogits", z, dz, objective, 200);
  // Independent value: -log softmax computed directly over the real vocabulary only.
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t j = 0; j < vocab; ++j) sum += std::exp(z.data<double>()[r * padded + j]);
    EXPECT_NEAR(losses.data<double>()[r], std::log(sum) - z.data<double>()[r * padded + targets.data<int32_t>()[r]], 1e-12);
    for (int64_t j = vocab; j < padded; ++j) EXPECT_EQ(dz.data<double>()[r * padded + j], 0.0);
  }
}

TEST(OpsGrad, MatmulAllTransposes) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const int64_t m = 3, n = 4, k = 5;
      Tensor a = RandomTensor(ta ? Shape{k, m} : Shape{m, k}, 18), b = RandomTensor(tb ? Shape{n, k} : Shape{k, n}, 19);
      Tensor c = RandomTensor({m, n}, 20), c0 = c.Clone();
      ops::Matmul(a, ta, b, tb, &c, 2.0, 0.5);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double s = 0;
          for (int64_t l = 0; l < k; ++l)
            s += a.data<double>()[ta ? l * m + i : i * k + l] * b.data<double>()[tb ? j * k + l : l * n + j];
          EXPECT_NEAR(c.data<double>()[i * n + j], 2.0 * s + 0.5 * c0.data<double>()[i * n + j], 1e-12);
        }
    }
}

}  // namespace
}  // namespace baton
