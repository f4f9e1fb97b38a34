// The CUDA ops (layers/cuda/, attention and optimizer aside) against the CPU
// reference. Inputs are drawn fresh, rounded to bf16 on the host, and the
// reference runs in f32 on exactly those values, so input rounding is no part
// of the error; the GPU runs through the public ops API on bf16 activations
// and f32 statistics / gradients.
//
// Tolerances: |gpu - ref| <= rel * |ref| + abs * max|ref| (max over the tensor).
//   op                                   output        rel       abs
//   copies, gathers, Convert             any           exact (bitwise)
//   AddBias, Add, AddPositions (bf16)    bf16          2^-7      1e-4   (one bf16 rounding of an fp32 result:
//   LN / RMS forward y, GELU, Rope,      bf16          2^-7      1e-4    half an ulp, 2^-8, or a full ulp when
//   matmul -> bf16, cross-entropy dlogits                                the fp32 results differ in the last bits)
//   LN / RMS dx, GELU backward           bf16          2^-7      1e-3   (fp32 sums with cancellation)
//   matmul -> f32 (bf16 or f32 inputs)   f32           1e-5      1e-5   (fp32 accumulation; TF32 would miss this
//                                                                        by ~10x on f32 inputs)
//   BiasGrad, LN / RMS param grads,      f32           1e-5      1e-5   (fp32 accumulation of thousands of rows,
//   Positions / Embedding backward                                       vs a reference summing in f32 or f64)
//   Axpy, Scale (f32)                    f32           1e-6      1e-7   (an FMA or not: one rounding apart)
//   LN mean                              f32           1e-5      1e-4
//   LN / RMS rstd                        f32           1e-5      0
//   cross-entropy losses                 f32           1e-5      1e-5
//   SumsOfSquares, Sum                   double        1e-9 relative to the sum (of |x|)
// Determinism: BiasGrad, LayerNorm backward, EmbeddingBackward and
// SoftmaxCrossEntropy run twice must agree bitwise.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "layers/micro_batch.h"
#include "layers/ops.h"
#include "runtime/dtype.h"
#include "runtime/tensor.h"
#include "tests/gpu_test.h"
#include "tests/layers/gpu_compare.h"
#include "tests/layers/grad_check.h"

namespace baton {
namespace {
using testing::RandomTensor;
using testing::RandomTokens;
using namespace testing;


// ---------------------------------------------------------------- matmul

// Every product of one (ta, tb): bf16 x bf16 -> bf16; -> f32 with alpha 0.5, beta 1 onto
// random values (how weight gradients accumulate); f32 x f32 -> f32 (no TF32).
void CheckMatmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, uint64_t seed) {
  const std::string name = std::string("matmul a") + (ta ? "^T" : "") + " b" + (tb ? "^T" : "") + " m=" +
                           std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
  const Shape as = ta ? Shape{k, m} : Shape{m, k}, bs = tb ? Shape{n, k} : Shape{k, n};
  Tensor a = Random(as, seed), b = Random(bs, seed + 1);
  Tensor ag = GpuBf16(a), bg = GpuBf16(b);

  Tensor ref = Tensor::Empty({m, n}, DType::kF32);
  ops::Matmul(a, ta, b, tb, &ref);
  Tensor c = Tensor::Empty({m, n}, DType::kBF16, kGpu);
  ops::Matmul(ag, ta, bg, tb, &c);
  ExpectClose(c, ref, kBf16Out, name + " -> bf16");

  Tensor c0 = RandomF32({m, n}, seed + 2, 3.0);
  Tensor ref_acc = c0.Clone();
  ops::Matmul(a, ta, b, tb, &ref_acc, 0.5, 1.0);
  Tensor acc = GpuF32(c0);
  ops::Matmul(ag, ta, bg, tb, &acc, 0.5, 1.0);
  ExpectClose(acc, ref_acc, kF32Accum, name + " -> f32, alpha 0.5, beta 1");

  // Full-precision f32 inputs: bf16-valued ones would be exact in TF32 and hide it.
  Tensor af = RandomF32(as, seed + 3), bf = RandomF32(bs, seed + 4);
  Tensor ref_f = Tensor::Empty({m, n}, DType::kF32);
  ops::Matmul(af, ta, bf, tb, &ref_f);
  Tensor cf = Tensor::Empty({m, n}, DType::kF32, kGpu);
  ops::Matmul(GpuF32(af), ta, GpuF32(bf), tb, &cf);
  ExpectClose(cf, ref_f, kF32Accum, name + " f32 x f32 -> f32");
}

TEST(GpuOps, MatmulAllTransposesOddSizes) {
  BATON_REQUIRE_GPU();
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CheckMatmul(ta, tb, 77, 50, 96, 100 + 10 * ta + 20 * tb);
      CheckMatmul(ta, tb, 33, 17, 41, 200 + 10 * ta + 20 * tb);  // odd leading dimensions everywhere
    }
}

TEST(GpuOps, MatmulRealisticAndViews) {
  BATON_REQUIRE_GPU();
  CheckMatmul(false, true, 2048, 768, 768, 300);  // y = x W^T
  CheckMatmul(true, false, 768, 768, 2048, 310);  // dW += dy^T x
  CheckMatmul(false, false, 2048, 768, 768, 320);  // dx = dy W
  // a and c as row views: pointers aligned to 64 bytes only, not 256.
  const int64_t m = 77, n = 48, k = 96;
  Tensor a = Random({m + 1, k}, 330), b = Random({n, k}, 331);
  Tensor ref = Tensor::Empty({m, n}, DType::kF32);
  ops::Matmul(a.Rows(1, m + 1), false, b, true, &ref);
  Tensor c_all = Tensor::Zeros({m + 1, n}, DType::kF32, kGpu);
  Tensor c = c_all.Rows(1, m + 1);
  ops::Matmul(GpuBf16(a).Rows(1, m + 1), false, GpuBf16(b), true, &c);
  ExpectClose(c, ref, kF32Accum, "matmul on row views");
}

// ---------------------------------------------------------------- columns, elementwise

TEST(GpuOps, CopyAndSetColumns) {
  BATON_REQUIRE_GPU();
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> cases = {{2304, 768, 768}, {31, 3, 5}, {40, 8, 24}};
  for (const auto& [cols, begin, width] : cases) {
    const int64_t rows = 129;
    Tensor src = Random({rows, cols}, 400 + cols);
    for (DType dt : {DType::kBF16, DType::kF32}) {
      Tensor sg = dt == DType::kBF16 ? GpuBf16(src) : GpuF32(src);
      Tensor ref = Tensor::Empty({rows, width}, DType::kF32);
      ops::CopyColumns(src, begin, &ref);
      Tensor part = Tensor::Empty({rows, width}, dt, kGpu);
      ops::CopyColumns(sg, begin, &part);
      ExpectClose(part, ref, kExact, "CopyColumns " + std::string(DTypeName(dt)) + " cols " + std::to_string(cols));
      // Back into another random matrix.
      Tensor dst = Random({rows, cols}, 450 + cols);
      Tensor dg = dt == DType::kBF16 ? GpuBf16(dst) : GpuF32(dst);
      ops::SetColumns(ref, begin, &dst);
      ops::SetColumns(part, begin, &dg);
      ExpectClose(dg, dst, kExact, "SetColumns " + std::string(DTypeName(dt)) + " cols " + std::to_string(cols));
    }
  }
}

TEST(GpuOps, BiasAddAxpyScale) {
  BATON_REQUIRE_GPU();
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 768}, {37, 77}};
  for (const auto& [rows, cols] : shapes) {
    const std::string at = " [" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
    Tensor y = Random({rows, cols}, 500), bias = Random({cols}, 501);
    Tensor yg = GpuBf16(y);
    ops::AddBias(bias, &y);
    ops::AddBias(GpuBf16(bias), &yg);
    ExpectClose(yg, y, kBf16Out, "AddBias" + at);

    Tensor dy = Random({rows, cols}, 502), gb = RandomF32({cols}, 503);
    Tensor dyg = GpuBf16(dy), gbg = GpuF32(gb), gbg2 = GpuF32(gb);
    ops::BiasGrad(dy, &gb);
    ops::BiasGrad(dyg, &gbg);
    ops::BiasGrad(dyg, &gbg2);
    ExpectClose(gbg, gb, kF32Accum, "BiasGrad" + at);
    ExpectBitwise(gbg, gbg2, "BiasGrad run twice" + at);
  }
  // Elementwise over odd lengths (vector body + scalar tail) and a misaligned view (scalar path).
  const int64_t n = 1000003;
  Tensor a = Random({n}, 510), b = Random({n}, 511);
  for (int64_t skip : {0, 1}) {
    const std::string at = skip ? " (misaligned view)" : "";
    Tensor av = a.Rows(skip, n), bv = b.Rows(skip, n);
    Tensor ref = Tensor::Empty({n - skip}, DType::kF32);
    ops::Add(av, bv, &ref);
    Tensor ab = GpuBf16(a).Rows(skip, n);
    ops::Add(ab, GpuBf16(b).Rows(skip, n), &ab);  // out aliases a
    ExpectClose(ab, ref, kBf16Out, "Add bf16" + at);
    Tensor af = GpuF32(a).Rows(skip, n);
    ops::Add(af, GpuF32(b).Rows(skip, n), &af);
    ExpectClose(af, ref, kExact, "Add f32" + at);  // a + b of bf16 values is exact in f32 here

    Tensor x_all = RandomF32({n}, 512), y_all = RandomF32({n}, 513);
    Tensor x = x_all.Rows(skip, n), y = y_all.Rows(skip, n);
    Tensor yg = GpuF32(y_all).Rows(skip, n);
    ops::Axpy(-0.37, GpuF32(x_all).Rows(skip, n), &yg);
    ops::Axpy(-0.37, x, &y);
    ExpectClose(yg, y, {1e-6, 1e-7}, "Axpy" + at);
    ops::Scale(1.7, &yg);
    ops::Scale(1.7, &y);
    ExpectClose(yg, y, {1e-6, 1e-7}, "Scale" + at);
  }
}

TEST(GpuOps, ConvertRoundsToNearestEven) {
  BATON_REQUIRE_GPU();
  std::vector<float> v = {0.f, -0.f, 1.f, 1.f + 1.f / 256, 1.f + 3.f / 256, 1.f + 1.f / 128 + 1.f / 512, -2.5f,
                          1e-40f, -3e-39f, 3.4e38f, -3.4e38f, std::numeric_limits<float>::infinity(), 65504.f,
                          1.00390625f, 255.5f};
  Tensor special = Tensor::FromVector<float>({static_cast<int64_t>(v.size())}, v);
  for (const Tensor& src : {special, RandomF32({100001}, 520, 100.0)}) {
    Tensor want = Tensor::Empty(src.shape(), DType::kF32);
    for (int64_t i = 0; i < src.numel(); ++i) want.data<float>()[i] = Bf16ToFloat(FloatToBf16(src.data<float>()[i]));
    Tensor b = ops::Cast(GpuF32(src), DType::kBF16);
    ExpectClose(b, want, kExact, "f32 -> bf16");
    ExpectClose(ops::Cast(b, DType::kF32), want, kExact, "bf16 -> f32");
  }
}

// ---------------------------------------------------------------- embeddings

TEST(GpuOps, EmbeddingForwardAndPositions) {
  BATON_REQUIRE_GPU();
  for (int64_t cols : {768, 77}) {
    const int64_t vocab = 1000, batch = 8, seq = 128, rows = batch * seq, max_len = 256;
    Tensor table = Random({vocab, cols}, 600), ids = RandomTokens({rows}, vocab, 601);
    Tensor pos = Random({max_len, cols}, 602);
    Tensor y = Tensor::Empty({rows, cols}, DType::kF32);
    ops::EmbeddingForward(ids, table, &y);
    Tensor yg = Tensor::Empty({rows, cols}, DType::kBF16, kGpu);
    ops::EmbeddingForward(ids.To(kGpu), GpuBf16(table), &yg);
    ExpectClose(yg, y, kExact, "EmbeddingForward cols " + std::to_string(cols));
    ops::AddPositions(pos, seq, &y);
    ops::AddPositions(GpuBf16(pos), seq, &yg);
    ExpectClose(yg, y, kBf16Out, "AddPositions cols " + std::to_string(cols));

    Tensor dy = Random({rows, cols}, 603), gp = RandomF32({max_len, cols}, 604);
    Tensor gpg = GpuF32(gp);
    ops::PositionsBackward(dy, seq, &gp);
    ops::PositionsBackward(GpuBf16(dy), seq, &gpg);
    ExpectClose(gpg, gp, kF32Accum, "PositionsBackward cols " + std::to_string(cols));
  }
}

TEST(GpuOps, EmbeddingBackwardRepeatedIdsIsDeterministic) {
  BATON_REQUIRE_GPU();
  for (int64_t cols : {768, 77}) {
    const int64_t vocab = 50, rows = 4096;
    Tensor ids = RandomTokens({rows}, vocab, 610);
    for (int64_t r = 0; r < rows; r += 2) ids.data<int32_t>()[r] = 7;  // one id in half the rows: a long run
    ids.data<int32_t>()[rows - 1] = vocab - 1;
    Tensor dy = Random({rows, cols}, 611), g = RandomF32({vocab, cols}, 612);
    Tensor idg = ids.To(kGpu), dyg = GpuBf16(dy), g1 = GpuF32(g), g2 = GpuF32(g);
    ops::EmbeddingBackward(ids, dy, &g);
    ops::EmbeddingBackward(idg, dyg, &g1);
    ops::EmbeddingBackward(idg, dyg, &g2);
    ExpectClose(g1, g, kF32Accum, "EmbeddingBackward cols " + std::to_string(cols));
    ExpectBitwise(g1, g2, "EmbeddingBackward run twice, cols " + std::to_string(cols));
  }
  // Realistic: GPT-2 vocabulary, 8 x 1024 tokens.
  const int64_t vocab = 50304, rows = 8192, cols = 768;
  Tensor ids = RandomTokens({rows}, 50257, 620), dy = Random({rows, cols}, 621);
  Tensor g = Tensor::Zeros({vocab, cols}, DType::kF32), gg = Tensor::Zeros({vocab, cols}, DType::kF32, kGpu);
  ops::EmbeddingBackward(ids, dy, &g);
  ops::EmbeddingBackward(ids.To(kGpu), GpuBf16(dy), &gg);
  ExpectClose(gg, g, kF32Accum, "EmbeddingBackward GPT-2 sizes");
}

// ---------------------------------------------------------------- norms

TEST(GpuOps, LayerNorm) {
  BATON_REQUIRE_GPU();
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 768}, {37, 77}, {16, 4096}};
  for (const auto& [rows, cols] : shapes) {
    const std::string at = " [" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
    Tensor x = Random({rows, cols}, 700, 2.0), g = Random({cols}, 701), b = Random({cols}, 702);
    for (int64_t i = 0; i < x.numel(); ++i)  // a mean to remove, and bf16 values again
      x.data<float>()[i] = Bf16ToFloat(FloatToBf16(x.data<float>()[i] + 1.0f));
    Tensor y = Tensor::Empty({rows, cols}, DType::kF32), mean = Tensor::Empty({rows}, DType::kF32),
           rstd = Tensor::Empty({rows}, DType::kF32);
    ops::LayerNormForward(x, g, b, 1e-5, &y, &mean, &rstd);
    Tensor xg = GpuBf16(x), gg = GpuBf16(g);
    Tensor yg = Tensor::Empty({rows, cols}, DType::kBF16, kGpu), mg = Tensor::Empty({rows}, DType::kF32, kGpu),
           rg = Tensor::Empty({rows}, DType::kF32, kGpu);
    ops::LayerNormForward(xg, gg, GpuBf16(b), 1e-5, &yg, &mg, &rg);
    ExpectClose(yg, y, kBf16Out, "LayerNorm y" + at);
    ExpectClose(mg, mean, {1e-5, 1e-4}, "LayerNorm mean" + at);
    ExpectClose(rg, rstd, {1e-5, 0}, "LayerNorm rstd" + at);

    // Backward from the reference statistics, so that only the backward is compared.
    Tensor dy = Random({rows, cols}, 703), dgain = RandomF32({cols}, 704), dbias = RandomF32({cols}, 705);
    Tensor mgr = GpuF32(mean), rgr = GpuF32(rstd), dyg = GpuBf16(dy);
    Tensor dxg = Tensor::Empty({rows, cols}, DType::kBF16, kGpu), dgg = GpuF32(dgain), dbg = GpuF32(dbias);
    Tensor dgg2 = GpuF32(dgain), dbg2 = GpuF32(dbias), dxg2 = Tensor::Empty({rows, cols}, DType::kBF16, kGpu);
    Tensor dx = Tensor::Empty({rows, cols}, DType::kF32);
    ops::LayerNormBackward(dy, x, g, mean, rstd, &dx, &dgain, &dbias);
    ops::LayerNormBackward(dyg, xg, gg, mgr, rgr, &dxg, &dgg, &dbg);
    ops::LayerNormBackward(dyg, xg, gg, mgr, rgr, &dxg2, &dgg2, &dbg2);
    ExpectClose(dxg, dx, kBf16Cancel, "LayerNorm dx" + at);
    ExpectClose(dgg, dgain, kF32Accum, "LayerNorm grad_gain" + at);
    ExpectClose(dbg, dbias, kF32Accum, "LayerNorm grad_bias" + at);
    ExpectBitwise(dxg, dxg2, "LayerNorm dx run twice" + at);
    ExpectBitwise(dgg, dgg2, "LayerNorm grad_gain run twice" + at);
    ExpectBitwise(dbg, dbg2, "LayerNorm grad_bias run twice" + at);
  }
}

TEST(GpuOps, RmsNormWithAndWithoutGain) {
  BATON_REQUIRE_GPU();
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 768}, {37, 77}};
  for (const auto& [rows, cols] : shapes) {
    for (bool with_gain : {true, false}) {
      const std::string at = " [" + std::to_string(rows) + ", " + std::to_string(cols) + "]" +
                             (with_gain ? "" : " without gain");
      Tensor x = Random({rows, cols}, 710), g = with_gain ? Random({cols}, 711) : Tensor();
      Tensor y = Tensor::Empty({rows, cols}, DType::kF32), rstd = Tensor::Empty({rows}, DType::kF32);
      ops::RmsNormForward(x, g, 1e-6, &y, &rstd);
      Tensor xg = GpuBf16(x), gg = with_gain ? GpuBf16(g) : Tensor();
      Tensor yg = Tensor::Empty({rows, cols}, DType::kBF16, kGpu), rg = Tensor::Empty({rows}, DType::kF32, kGpu);
      ops::RmsNormForward(xg, gg, 1e-6, &yg, &rg);
      ExpectClose(yg, y, kBf16Out, "RmsNorm y" + at);
      ExpectClose(rg, rstd, {1e-5, 0}, "RmsNorm rstd" + at);

      Tensor dy = Random({rows, cols}, 712), dgain = RandomF32({cols}, 713);
      Tensor dx = Tensor::Empty({rows, cols}, DType::kF32);
      Tensor dxg = Tensor::Empty({rows, cols}, DType::kBF16, kGpu), dgg = GpuF32(dgain);
      ops::RmsNormBackward(dy, x, g, rstd, &dx, with_gain ? &dgain : nullptr);
      ops::RmsNormBackward(GpuBf16(dy), xg, gg, GpuF32(rstd), &dxg, with_gain ? &dgg : nullptr);
      ExpectClose(dxg, dx, kBf16Cancel, "RmsNorm dx" + at);
      if (with_gain) ExpectClose(dgg, dgain, kF32Accum, "RmsNorm grad_gain" + at);
    }
  }
}

// ---------------------------------------------------------------- GELU, RoPE

TEST(GpuOps, Gelu) {
  BATON_REQUIRE_GPU();
  const int64_t n = 1024 * 3072 + 5;
  Tensor x = Random({n}, 800, 3.0), dy = Random({n}, 801);
  Tensor y = Tensor::Empty({n}, DType::kF32), dx = Tensor::Empty({n}, DType::kF32);
  ops::GeluForward(x, &y);
  ops::GeluBackward(dy, x, &dx);
  Tensor xg = GpuBf16(x), yg = Tensor::Empty({n}, DType::kBF16, kGpu), dxg = Tensor::Empty({n}, DType::kBF16, kGpu);
  ops::GeluForward(xg, &yg);
  ops::GeluBackward(GpuBf16(dy), xg, &dxg);
  ExpectClose(yg, y, kBf16Out, "GELU forward");
  ExpectClose(dxg, dx, kBf16Cancel, "GELU backward");
}

TEST(GpuOps, RopeBothStylesAndInverse) {
  BATON_REQUIRE_GPU();
  struct Case {
    int64_t batch, seq, heads, head_dim;
  };
  for (Case c : {Case{4, 256, 12, 64}, Case{1, 2048, 2, 128}, Case{3, 5, 3, 6}}) {
    for (ops::RopeStyle style : {ops::RopeStyle::kInterleaved, ops::RopeStyle::kHalfSplit}) {
      const std::string at = " seq " + std::to_string(c.seq) + " head_dim " + std::to_string(c.head_dim) +
                             (style == ops::RopeStyle::kInterleaved ? " interleaved" : " half-split");
      // A packed qkv [rows, 3 cols]: q and k (columns [0, 2 cols)) rotate in one call, v stays.
      const int64_t rows = c.batch * c.seq, cols = c.heads * c.head_dim;
      Tensor x = Random({rows, 3 * cols}, 810);
      Tensor xg = GpuBf16(x), x0 = xg.Clone();
      ops::Rope(&x, 0, 2 * cols, c.seq, c.head_dim, style, 10000.0, false);
      ops::Rope(&xg, 0, 2 * cols, c.seq, c.head_dim, style, 10000.0, false);
      ExpectClose(xg, x, kBf16Out, "Rope" + at);
      x = ops::Cast(xg, DType::kF32).To(Device::CPU());  // the inverse starts from the same (bf16) values
      ops::Rope(&x, 0, 2 * cols, c.seq, c.head_dim, style, 10000.0, true);
      ops::Rope(&xg, 0, 2 * cols, c.seq, c.head_dim, style, 10000.0, true);
      ExpectClose(xg, x, kBf16Out, "Rope inverse" + at);
      ExpectClose(xg, x0, {1.0 / 32, 1e-2}, "Rope then inverse is the identity" + at);
      const std::vector<double> got = xg.ToDoubles(), before = x0.ToDoubles();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t e = 2 * cols; e < 3 * cols; ++e)
          ASSERT_EQ(got[r * 3 * cols + e], before[r * 3 * cols + e]) << "v moved: row " << r << " column " << e << at;
    }
  }
}

// ---------------------------------------------------------------- cross-entropy

void CheckCrossEntropy(int64_t rows, int64_t vocab, int64_t padded, uint64_t seed) {
  const std::string at = " rows " + std::to_string(rows) + " vocab " + std::to_string(vocab) + "/" +
                         std::to_string(padded);
  Tensor logits = Random({rows, padded}, seed, 2.0);
  for (int64_t r = 0; r < rows; ++r)  // padding that would dominate the softmax if it entered it
    for (int64_t j = vocab; j < padded; ++j) logits.data<float>()[r * padded + j] = 30.f;
  Tensor targets = RandomTokens({rows}, vocab, seed + 1);
  targets.data<int32_t>()[0] = static_cast<int32_t>(vocab - 1);  // the last real column
  const int64_t ignored = rows > 2 ? rows - 2 : -1;  // a position without a target (masked LM, padding)
  if (ignored >= 0) targets.data<int32_t>()[ignored] = kIgnoreTarget;
  const double scale = 1.0 / static_cast<double>(rows);
  Tensor losses = Tensor::Empty({rows}, DType::kF32), dlogits = Tensor::Empty({rows, padded}, DType::kF32);
  ops::SoftmaxCrossEntropy(logits, targets, vocab, &losses, &dlogits, scale);

  Tensor lg = GpuBf16(logits), tg = targets.To(kGpu);
  Tensor lossg = Tensor::Empty({rows}, DType::kF32, kGpu), dlg = Tensor::Empty({rows, padded}, DType::kBF16, kGpu);
  ops::SoftmaxCrossEntropy(lg, tg, vocab, &lossg, &dlg, scale);
  ExpectClose(lossg, losses, kF32Accum, "cross-entropy losses" + at);
  ExpectClose(dlg, dlogits, kBf16Out, "cross-entropy dlogits" + at);
  const std::vector<double> d = dlg.ToDoubles();
  int64_t nonzero_pad = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = vocab; j < padded; ++j) nonzero_pad += d[r * padded + j] != 0.0;
  EXPECT_EQ(nonzero_pad, 0) << "padded columns must get exactly zero gradient" << at;
  if (ignored >= 0) {
    EXPECT_EQ(lossg.ToDoubles()[ignored], 0.0) << "a position without a target has no loss" << at;
    for (int64_t j = 0; j < padded; ++j)
      ASSERT_EQ(d[ignored * padded + j], 0.0) << "a position without a target has no gradient, column " << j << at;
  }

  // Losses only.
  Tensor loss_only = Tensor::Empty({rows}, DType::kF32, kGpu);
  ops::SoftmaxCrossEntropy(lg, tg, vocab, &loss_only, nullptr, scale);
  ExpectBitwise(loss_only, lossg, "cross-entropy losses without dlogits" + at);
  // dlogits written over the logits (how the loss head calls it): same bits as into a separate tensor.
  Tensor in_place = GpuBf16(logits), loss_in_place = Tensor::Empty({rows}, DType::kF32, kGpu);
  ops::SoftmaxCrossEntropy(in_place, tg, vocab, &loss_in_place, &in_place, scale);
  ExpectBitwise(loss_in_place, lossg, "cross-entropy losses, dlogits aliasing logits" + at);
  ExpectBitwise(in_place, dlg, "cross-entropy dlogits aliasing logits" + at);
}

TEST(GpuOps, SoftmaxCrossEntropyPaddedVocab) {
  BATON_REQUIRE_GPU();
  CheckCrossEntropy(64, 1000, 1024, 900);
  CheckCrossEntropy(8, 50257, 50304, 910);  // GPT-2: vocab % 8 == 1, a masked vector at the boundary
  CheckCrossEntropy(4096, 1000, 1024, 920);
  CheckCrossEntropy(5, 999, 1001, 930);  // odd padded width: the scalar path
  CheckCrossEntropy(3, 7, 7, 940);       // no padding, tiny
}

// ---------------------------------------------------------------- reductions

TEST(GpuOps, SumsOfSquaresAndSum) {
  BATON_REQUIRE_GPU();
  // Mixed dtypes and sizes, more arrays than one launch takes (64), a misaligned view.
  std::vector<Tensor> host, gpu;
  for (int i = 0; i < 150; ++i) {
    const int64_t n = i == 0 ? 3000001 : (i == 1 ? 1 : (i * 7919) % 20000 + 1);
    Tensor t = Random({n}, 1000 + i, 0.5 + i % 3);
    host.push_back(t);
    gpu.push_back(i % 2 ? GpuBf16(t) : GpuF32(t));
  }
  Tensor big = Random({1000003}, 1200);
  host.push_back(big.Rows(1, 1000003));
  gpu.push_back(GpuBf16(big).Rows(1, 1000003));
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : gpu) ptrs.push_back(&t);
  const std::vector<double> sums = ops::SumsOfSquares(ptrs);
  ASSERT_EQ(sums.size(), host.size());
  for (size_t i = 0; i < host.size(); ++i) {
    double want = 0;
    for (double v : host[i].ToDoubles()) want += v * v;
    EXPECT_NEAR(sums[i], want, 1e-9 * want) << "array " << i << " of " << host[i].numel();
  }
  EXPECT_EQ(ops::SumsOfSquares(ptrs), sums) << "run twice";

  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{3000017}}) {
    Tensor x = RandomF32({n}, 1300 + n);
    double want = 0, abs_sum = 0;
    for (double v : x.ToDoubles()) {
      want += v;
      abs_sum += std::fabs(v);
    }
    EXPECT_NEAR(ops::Sum(GpuF32(x)), want, 1e-9 * abs_sum) << "Sum of " << n;
  }
}

}  // namespace
}  // namespace baton
