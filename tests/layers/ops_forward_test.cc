// Forward values of the ops against formulas written out here from
// REFERENCE.md (the gradient checks only prove backward matches forward), and
// the fp32 kernels that train against the fp64 ones on fresh random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

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

// [rows, 3 cols]: q | k | v side by side, as the fused qkv projection lays them out.
Tensor Pack(const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t cols = q.dim(1);
  Tensor qkv = Tensor::Empty({q.dim(0), 3 * cols}, q.dtype());
  ops::SetColumns(q, 0, &qkv);
  ops::SetColumns(k, cols, &qkv);
  ops::SetColumns(v, 2 * cols, &qkv);
  return qkv;
}
// Column block `block` (0: q, 1: k, 2: v) of a packed [rows, 3 cols] tensor.
Tensor Block(const Tensor& packed, int block) {
  const int64_t cols = packed.dim(1) / 3;
  Tensor t = Tensor::Empty({packed.dim(0), cols}, packed.dtype());
  ops::CopyColumns(packed, block * cols, &t);
  return t;
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
  const Tensor qkv = Pack(q, k, v);
  Tensor out = Tensor::Empty({2, 2}, DType::kF64), lse = Tensor::Empty({1, 1, 2}, DType::kF64);
  ops::AttentionForward(qkv, 2, 1, ops::AttentionMask::Causal(), &out, &lse);
  // Token 0 sees only itself: score q0.k0 = 2, scaled by 1/sqrt(2).
  EXPECT_DOUBLE_EQ(out.data<double>()[0], 1);
  EXPECT_DOUBLE_EQ(out.data<double>()[1], 2);
  EXPECT_NEAR(lse.data<double>()[0], 2 / std::sqrt(2.0), 1e-12);
  // Token 1: scores q1.k0 = 0, q1.k1 = -3.5, scaled by 1/sqrt(2).
  const double s0 = 0 / std::sqrt(2.0), s1 = -3.5 / std::sqrt(2.0);
  const double p0 = std::exp(s0) / (std::exp(s0) + std::exp(s1)), p1 = 1 - p0;
  EXPECT_NEAR(out.data<double>()[2], p0 * 1 + p1 * -3, 1e-12);
  EXPECT_NEAR(out.data<double>()[3], p0 * 2 + p1 * 4, 1e-12);
  EXPECT_NEAR(lse.data<double>()[1], std::log(std::exp(s0) + std::exp(s1)), 1e-12);

  // A prefix of 2 (UniLM source, here the whole sequence): token 0 also sees token 1.
  ops::AttentionMask prefix;
  prefix.prefix = 2;
  ops::AttentionForward(qkv, 2, 1, prefix, &out, &lse);
  const double t0 = 2 / std::sqrt(2.0), t1 = -1 / std::sqrt(2.0);  // q0.k0, q0.k1
  const double r0 = std::exp(t0) / (std::exp(t0) + std::exp(t1)), r1 = 1 - r0;
  EXPECT_NEAR(out.data<double>()[0], r0 * 1 + r1 * -3, 1e-12);
  EXPECT_NEAR(out.data<double>()[1], r0 * 2 + r1 * 4, 1e-12);
  EXPECT_NEAR(lse.data<double>()[0], std::log(std::exp(t0) + std::exp(t1)), 1e-12);
  EXPECT_NEAR(out.data<double>()[2], p0 * 1 + p1 * -3, 1e-12);  // token 1 saw both already

  // Length 1: token 1 is padding, so nobody sees it; token 1's own query sees token 0 only.
  ops::AttentionMask padded;
  padded.prefix = 2;
  padded.lengths = Tensor::FromVector<int32_t>({1}, {1});
  ops::AttentionForward(qkv, 2, 1, padded, &out, &lse);
  EXPECT_DOUBLE_EQ(out.data<double>()[0], 1);
  EXPECT_DOUBLE_EQ(out.data<double>()[1], 2);
  EXPECT_DOUBLE_EQ(out.data<double>()[2], 1);
  EXPECT_DOUBLE_EQ(out.data<double>()[3], 2);
  EXPECT_NEAR(lse.data<double>()[1], s0, 1e-12);
}

// The mask's promises, checked bitwise: under UniLM's mask a target token never
// changes the outputs before it (sources and earlier targets), and a padding key
// changes nothing at all.
TEST(OpsForward, AttentionMaskProperties) {
  const int64_t batch = 2, seq = 9, heads = 2, head_dim = 4, rows = batch * seq, cols = heads * head_dim;
  const std::vector<int32_t> prefix_lengths = {4, 6}, lengths = {9, 7};
  ops::AttentionMask mask;
  mask.prefix_lengths = Tensor::FromVector<int32_t>({batch}, prefix_lengths);
  mask.lengths = Tensor::FromVector<int32_t>({batch}, lengths);
  Tensor q = RandomTensor({rows, cols}, 520), k = RandomTensor({rows, cols}, 521), v = RandomTensor({rows, cols}, 522);
  auto run = [&](const Tensor& qq, const Tensor& kk, const Tensor& vv, const ops::AttentionMask& m) {
    Tensor out = Tensor::Empty({rows, cols}, DType::kF64), lse = Tensor::Empty({batch, heads, seq}, DType::kF64);
    ops::AttentionForward(Pack(qq, kk, vv), seq, heads, m, &out, &lse);
    return std::make_pair(out.ToDoubles(), lse.ToDoubles());
  };
  const auto base = run(q, k, v, mask);
  // Changes q, k and v of token `pos` of example b (or only k and v).
  auto perturbed = [&](int64_t b, int64_t pos, bool query_too) {
    Tensor qq = q.Clone(), kk = k.Clone(), vv = v.Clone();
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = (b * seq + pos) * cols + c;
      if (query_too) qq.data<double>()[i] += 0.7;
      kk.data<double>()[i] -= 1.3;
      vv.data<double>()[i] += 2.1;
    }
    return run(qq, kk, vv, mask);
  };
  for (int64_t b = 0; b < batch; ++b) {
    // Each target token t in [prefix, length): rows before t unchanged, row t itself changes.
    for (int64_t t = prefix_lengths[b]; t < lengths[b]; ++t) {
      const auto changed = perturbed(b, t, true);
      for (int64_t i = 0; i < t; ++i)
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t e = (b * seq + i) * cols + c;
          EXPECT_EQ(changed.first[e], base.first[e]) << "b " << b << " target " << t << " row " << i;
        }
      double diff = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t e = (b * seq + t) * cols + c;
        diff += std::fabs(changed.first[e] - base.first[e]);
      }
      EXPECT_GT(diff, 0) << "b " << b << " target " << t << ": the check would be vacuous";
    }
    // Padding keys: nothing of any row changes, lse included; the other example neither.
    for (int64_t j = lengths[b]; j < seq; ++j) {
      const auto changed = perturbed(b, j, false);
      EXPECT_EQ(changed.first, base.first) << "b " << b << " padding key " << j;
      EXPECT_EQ(changed.second, base.second) << "b " << b << " padding key " << j;
    }
  }
  // A source token changes the rows of every later position that sees it, earlier sources included.
  const auto changed = perturbed(0, prefix_lengths[0] - 1, false);
  EXPECT_NE(changed.first[0], base.first[0]);
  // Per-example prefix lengths that are all equal are the scalar prefix.
  ops::AttentionMask same, scalar;
  same.prefix_lengths = Tensor::FromVector<int32_t>({batch}, {5, 5});
  scalar.prefix = 5;
  EXPECT_EQ(run(q, k, v, same).first, run(q, k, v, scalar).first);
}

// Attention written out the plain way on separate q, k, v ([rows, heads * head_dim]), with
// the whole [seq, seq] probability matrix: P = softmax(scale q k^T, masked), out = P v, and
// dV = P^T dout, dP = dout v^T, dS = P (dP - rowsum(P dP)), dq = scale dS k, dk = scale dS^T q.
struct PlainAttention {
  std::vector<double> out, lse, dq, dk, dv;
};
PlainAttention PlainReference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout, int64_t seq,
                              int64_t heads, const std::vector<int32_t>& prefix_lengths,
                              const std::vector<int32_t>& lengths) {
  const int64_t rows = q.dim(0), cols = q.dim(1), d = cols / heads, batch = rows / seq;
  const double scale = 1 / std::sqrt(static_cast<double>(d));
  const double *Q = q.data<double>(), *K = k.data<double>(), *V = v.data<double>(), *dO = dout.data<double>();
  PlainAttention r;
  r.out.assign(rows * cols, 0);
  r.dq.assign(rows * cols, 0);
  r.dk.assign(rows * cols, 0);
  r.dv.assign(rows * cols, 0);
  r.lse.assign(batch * heads * seq, 0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      auto at = [&](int64_t i, int64_t e) { return (b * seq + i) * cols + h * d + e; };
      auto visible = [&](int64_t i, int64_t j) { return j < lengths[b] && (j <= i || j < prefix_lengths[b]); };
      std::vector<double> p(seq * seq, 0), dp(seq * seq, 0);
      for (int64_t i = 0; i < seq; ++i) {
        std::vector<double> s(seq, 0);
        double mx = -std::numeric_limits<double>::infinity(), sum = 0;
        for (int64_t j = 0; j < seq; ++j) {
          for (int64_t e = 0; e < d; ++e) s[j] += scale * Q[at(i, e)] * K[at(j, e)];
          if (visible(i, j)) mx = std::max(mx, s[j]);
        }
        for (int64_t j = 0; j < seq; ++j) sum += visible(i, j) ? std::exp(s[j] - mx) : 0;
        for (int64_t j = 0; j < seq; ++j) p[i * seq + j] = visible(i, j) ? std::exp(s[j] - mx) / sum : 0;
        r.lse[(b * heads + h) * seq + i] = mx + std::log(sum);
        for (int64_t j = 0; j < seq; ++j)
          for (int64_t e = 0; e < d; ++e) {
            r.out[at(i, e)] += p[i * seq + j] * V[at(j, e)];
            dp[i * seq + j] += dO[at(i, e)] * V[at(j, e)];
            r.dv[at(j, e)] += p[i * seq + j] * dO[at(i, e)];
          }
      }
      for (int64_t i = 0; i < seq; ++i) {
        double row = 0;
        for (int64_t j = 0; j < seq; ++j) row += p[i * seq + j] * dp[i * seq + j];
        for (int64_t j = 0; j < seq; ++j) {
          const double ds = p[i * seq + j] * (dp[i * seq + j] - row);
          for (int64_t e = 0; e < d; ++e) {
            r.dq[at(i, e)] += scale * ds * K[at(j, e)];
            r.dk[at(j, e)] += scale * ds * Q[at(i, e)];
          }
        }
      }
    }
  return r;
}

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (double x : want) scale = std::max(scale, std::fabs(x));
  ASSERT_GT(scale, 0) << what << ": all zero, the check would be vacuous";
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-12 * scale) << what << " element " << i;
}

// The packed op (q, k, v read in place from qkv, dq | dk | dv written into d_qkv) against the
// plain math on q, k, v held apart, under a mask with sources and padding.
TEST(OpsForward, PackedAttentionMatchesPlainMath) {
  const int64_t batch = 2, seq = 7, heads = 3, head_dim = 4, rows = batch * seq, cols = heads * head_dim;
  const std::vector<int32_t> prefix_lengths = {2, 3}, lengths = {7, 5};
  ops::AttentionMask mask;
  mask.prefix_lengths = Tensor::FromVector<int32_t>({batch}, prefix_lengths);
  mask.lengths = Tensor::FromVector<int32_t>({batch}, lengths);
  const Tensor q = RandomTensor({rows, cols}, 530), k = RandomTensor({rows, cols}, 531),
               v = RandomTensor({rows, cols}, 532), dout = RandomTensor({rows, cols}, 533);
  const PlainAttention want = PlainReference(q, k, v, dout, seq, heads, prefix_lengths, lengths);

  const Tensor qkv = Pack(q, k, v);
  Tensor out = Tensor::Empty({rows, cols}, DType::kF64), lse = Tensor::Empty({batch, heads, seq}, DType::kF64);
  ops::AttentionForward(qkv, seq, heads, mask, &out, &lse);
  ExpectNear(out.ToDoubles(), want.out, "out");
  ExpectNear(lse.ToDoubles(), want.lse, "lse");
  Tensor d_qkv = Tensor::Empty({rows, 3 * cols}, DType::kF64);  // NaN: every element must be written
  std::fill(d_qkv.data<double>(), d_qkv.data<double>() + d_qkv.numel(), std::numeric_limits<double>::quiet_NaN());
  ops::AttentionBackward(dout, qkv, out, lse, seq, heads, mask, &d_qkv);
  ExpectNear(Block(d_qkv, 0).ToDoubles(), want.dq, "dq");
  ExpectNear(Block(d_qkv, 1).ToDoubles(), want.dk, "dk");
  ExpectNear(Block(d_qkv, 2).ToDoubles(), want.dv, "dv");
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
    Tensor qkv = RandomTensor({rows, 3 * h}, 504);
    Tensor o64 = Tensor::Empty({rows, h}, DType::kF64), l64 = Tensor::Empty({batch, heads, seq}, DType::kF64);
    Tensor o32 = Tensor::Empty({rows, h}, DType::kF32), l32 = Tensor::Empty({batch, heads, seq}, DType::kF32);
    ops::AttentionForward(qkv, seq, heads, ops::AttentionMask::Causal(), &o64, &l64);
    ops::AttentionForward(ToF32(qkv), seq, heads, ops::AttentionMask::Causal(), &o32, &l32);
    ExpectClose(o32, o64, 1e-5, "attention");
    ExpectClose(l32, l64, 1e-5, "attention lse");
    Tensor d64 = RandomTensor({rows, h}, 509), dqkv64 = Tensor::Empty({rows, 3 * h}, DType::kF64);
    Tensor dqkv32 = Tensor::Empty({rows, 3 * h}, DType::kF32);
    ops::AttentionBackward(d64, qkv, o64, l64, seq, heads, ops::AttentionMask::Causal(), &dqkv64);
    ops::AttentionBackward(ToF32(d64), ToF32(qkv), o32, l32, seq, heads, ops::AttentionMask::Causal(), &dqkv32);
    ExpectClose(Block(dqkv32, 0), Block(dqkv64, 0), 1e-5, "attention dq");
    ExpectClose(Block(dqkv32, 1), Block(dqkv64, 1), 1e-5, "attention dk");
    ExpectClose(Block(dqkv32, 2), Block(dqkv64, 2), 1e-5, "attention dv");
    Tensor qkv32 = ToF32(qkv);
    ops::Rope(&qkv, 0, 2 * h, seq, hd, ops::RopeStyle::kHalfSplit, 10000, false);
    ops::Rope(&qkv32, 0, 2 * h, seq, hd, ops::RopeStyle::kHalfSplit, 10000, false);
    ExpectClose(qkv32, qkv, 1e-6, "rope");
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
