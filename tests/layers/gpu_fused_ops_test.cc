// The fused GPU ops (cuBLASLt bias and DGELU epilogues, residual add + norm)
// against the CPU reference and against the unfused GPU sequence they replace;
// tolerances as in gpu_ops_test.cc, plus one extra bf16 rounding of the
// intermediate when compared with the unfused sequence.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "layers/ops.h"
#include "tests/gpu_test.h"
#include "tests/layers/gpu_compare.h"
#include "tests/layers/grad_check.h"

namespace baton {
namespace {
using namespace testing;

// ---------------------------------------------------------------- fused ops
// Against the CPU reference, the unfused GPU sequence, and themselves run twice (bitwise).
// Add{Layer,Rms}NormForward must give the sequence's bits; the others round once where the
// sequence rounds twice (ops.h), so they are compared within the bf16 tolerances above.

TEST(GpuOps, FusedLinearForwardBiasEpilogue) {
  BATON_REQUIRE_GPU();
  struct Case {
    int64_t m, n, k;
  };
  for (Case c : {Case{2048, 768, 768}, Case{2048, 3072, 768}, Case{2048, 2304, 3072}, Case{77, 48, 96},
                 Case{33, 17, 41}}) {
    const std::string at = " m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k);
    Tensor x = Random({c.m, c.k}, 1500), w = Random({c.n, c.k}, 1501), bias = Random({c.n}, 1502);
    Tensor ref = Tensor::Empty({c.m, c.n}, DType::kF32);
    ops::Matmul(x, false, w, true, &ref);
    ops::AddBias(bias, &ref);
    Tensor xg = GpuBf16(x), wg = GpuBf16(w), bg = GpuBf16(bias);
    Tensor y = Tensor::Empty({c.m, c.n}, DType::kBF16, kGpu), y2 = Tensor::Empty({c.m, c.n}, DType::kBF16, kGpu);
    ops::LinearForward(xg, wg, bg, &y);
    ops::LinearForward(xg, wg, bg, &y2);
    ExpectClose(y, ref, kBf16Out, "LinearForward" + at);
    ExpectBitwise(y, y2, "LinearForward run twice" + at);
    Tensor seq = Tensor::Empty({c.m, c.n}, DType::kBF16, kGpu);
    ops::Matmul(xg, false, wg, true, &seq);
    ops::AddBias(bg, &seq);
    ExpectClose(y, seq, kBf16ExtraRounding, "LinearForward vs Matmul then AddBias" + at);

    // Without a bias it is Matmul.
    Tensor mm = Tensor::Empty({c.m, c.n}, DType::kBF16, kGpu);
    ops::Matmul(xg, false, wg, true, &mm);
    ops::LinearForward(xg, wg, Tensor(), &y);
    ExpectBitwise(y, mm, "LinearForward without bias" + at);
    // A bias aligned to 2 bytes only: the unfused kernels, with their bits.
    Tensor bias_all = GpuBf16(Random({c.n + 1}, 1503));
    Tensor bv = bias_all.Rows(1, c.n + 1);
    ops::LinearForward(xg, wg, bv, &y);
    ops::AddBias(bv, &mm);
    ExpectBitwise(y, mm, "LinearForward with a misaligned bias" + at);
  }
}

TEST(GpuOps, FusedLinearBackwardInputGelu) {
  BATON_REQUIRE_GPU();
  struct Case {
    int64_t m, n, k;  // dy [m, k], W [k, n], f and d_f [m, n]
  };
  // n % 8 != 0: the epilogue's aux needs a leading dimension divisible by 8 (the unfused path).
  for (Case c : {Case{2048, 3072, 768}, Case{64, 256, 128}, Case{33, 20, 17}}) {
    const std::string at = " m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k);
    Tensor dy = Random({c.m, c.k}, 1510), w = Random({c.k, c.n}, 1511), f = Random({c.m, c.n}, 1512, 2.0);
    Tensor dg = Tensor::Empty({c.m, c.n}, DType::kF32), ref = Tensor::Empty({c.m, c.n}, DType::kF32);
    ops::Matmul(dy, false, w, false, &dg);
    ops::GeluBackward(dg, f, &ref);
    Tensor dyg = GpuBf16(dy), wg = GpuBf16(w), fg = GpuBf16(f);
    Tensor d = Tensor::Empty({c.m, c.n}, DType::kBF16, kGpu), d2 = Tensor::Empty({c.m, c.n}, DType::kBF16, kGpu);
    ops::LinearBackwardInputGelu(dyg, wg, fg, &d);
    ops::LinearBackwardInputGelu(dyg, wg, fg, &d2);
    ExpectClose(d, ref, kBf16Cancel, "LinearBackwardInputGelu" + at);
    ExpectBitwise(d, d2, "LinearBackwardInputGelu run twice" + at);
    Tensor dgg = Tensor::Empty({c.m, c.n}, DType::kBF16, kGpu), seq = Tensor::Empty({c.m, c.n}, DType::kBF16, kGpu);
    ops::Matmul(dyg, false, wg, false, &dgg);
    ops::GeluBackward(dgg, fg, &seq);
    ExpectClose(d, seq, kBf16ExtraRounding, "LinearBackwardInputGelu vs Matmul then GeluBackward" + at);
  }
}

// The GELU derivative alone, W = I and dy = 1: d_f = bf16(gelu'(f)), f over [-6, 6]. The tanh
// form and the erf form (exact GELU) differ by 3% of gelu' at f = -3 and 50% at f = -4; the
// tolerance (1/64 relative, 2e-5 absolute) takes any fp32 evaluation of the tanh form and one
// bf16 rounding, and rejects the erf form (checked below on the host).
TEST(GpuOps, FusedGeluDerivativeIsTheTanhForm) {
  BATON_REQUIRE_GPU();
  const int64_t m = 64, n = 1024;
  Tensor f = Tensor::Empty({m, n}, DType::kF32), eye = Tensor::Zeros({n, n}, DType::kF32);
  Tensor ones = Tensor::Empty({m, n}, DType::kF32);
  for (int64_t i = 0; i < m * n; ++i) {
    f.data<float>()[i] = Bf16ToFloat(FloatToBf16(static_cast<float>(-6.0 + 12.0 * i / (m * n - 1))));
    ones.data<float>()[i] = 1.f;
  }
  for (int64_t i = 0; i < n; ++i) eye.data<float>()[i * n + i] = 1.f;
  Tensor ref = Tensor::Empty({m, n}, DType::kF64);
  ops::GeluBackward(ops::Cast(ones, DType::kF64), ops::Cast(f, DType::kF64), &ref);
  Tensor d = Tensor::Empty({m, n}, DType::kBF16, kGpu);
  ops::LinearBackwardInputGelu(GpuBf16(ones), GpuBf16(eye), GpuBf16(f), &d);
  const std::vector<double> got = d.ToDoubles(), want = ref.ToDoubles(), x = f.ToDoubles();
  auto allowed = [](double r) { return std::fabs(r) / 64 + 2e-5; };
  int64_t bad = 0, erf_rejected = 0;
  double worst = 0, worst_at = 0;
  for (int64_t i = 0; i < m * n; ++i) {
    if (std::fabs(got[i] - want[i]) > worst) {
      worst = std::fabs(got[i] - want[i]);
      worst_at = x[i];
    }
    const double erf_form =  // Phi(x) + x phi(x)
        0.5 * (1 + std::erf(x[i] / std::sqrt(2.0))) + x[i] * std::exp(-0.5 * x[i] * x[i]) / std::sqrt(2 * M_PI);
    erf_rejected += std::fabs(erf_form - want[i]) > allowed(want[i]);
    if (std::fabs(got[i] - want[i]) <= allowed(want[i])) continue;
    if (bad < 5)
      ADD_FAILURE() << "gelu'(" << x[i] << "): GPU " << got[i] << ", tanh form " << want[i] << ", erf form "
                    << erf_form;
    ++bad;
  }
  EXPECT_GT(erf_rejected, 1000) << "the check must tell the tanh form from the erf form";
  EXPECT_EQ(bad, 0) << bad << " of " << m * n << " elements are not the tanh GELU's derivative (largest error "
                    << worst << " at f = " << worst_at
                    << "); if cuBLASLt's DGELU epilogue is at fault, set kDGeluEpilogue = false in "
                       "layers/cuda/matmul.cc";
}

TEST(GpuOps, FusedAddNormForwardGivesTheSequencesBits) {
  BATON_REQUIRE_GPU();
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 768}, {37, 77}, {16, 4096}};
  for (const auto& [rows, cols] : shapes) {
    const std::string at = " [" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
    Tensor a = GpuBf16(Random({rows, cols}, 1520, 2.0)), b = GpuBf16(Random({rows, cols}, 1521));
    Tensor g = GpuBf16(Random({cols}, 1522)), bias = GpuBf16(Random({cols}, 1523));
    auto bf16 = [&] { return Tensor::Empty({rows, cols}, DType::kBF16, kGpu); };
    auto stat = [&] { return Tensor::Empty({rows}, DType::kF32, kGpu); };
    Tensor sum = bf16(), y = bf16(), mean = stat(), rstd = stat();
    ops::Add(a, b, &sum);
    ops::LayerNormForward(sum, g, bias, 1e-5, &y, &mean, &rstd);
    Tensor fa = a.Clone(), fy = bf16(), fm = stat(), fr = stat();
    ops::AddLayerNormForward(fa, b, g, bias, 1e-5, &fa, &fy, &fm, &fr);  // the sum over a, as the block has it
    ExpectBitwise(fa, sum, "AddLayerNormForward sum" + at);
    ExpectBitwise(fy, y, "AddLayerNormForward y" + at);
    ExpectBitwise(fm, mean, "AddLayerNormForward mean" + at);
    ExpectBitwise(fr, rstd, "AddLayerNormForward rstd" + at);
    for (bool with_gain : {true, false}) {
      const Tensor gain = with_gain ? g : Tensor();
      const std::string rat = at + (with_gain ? "" : " without gain");
      ops::RmsNormForward(sum, gain, 1e-6, &y, &rstd);
      Tensor fsum = bf16();
      ops::AddRmsNormForward(a, b, gain, 1e-6, &fsum, &fy, &fr);
      ExpectBitwise(fsum, sum, "AddRmsNormForward sum" + rat);
      ExpectBitwise(fy, y, "AddRmsNormForward y" + rat);
      ExpectBitwise(fr, rstd, "AddRmsNormForward rstd" + rat);
    }
  }
}

TEST(GpuOps, FusedNormBackwardAdd) {
  BATON_REQUIRE_GPU();
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 768}, {37, 77}};
  for (const auto& [rows, cols] : shapes) {
    const std::string at = " [" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
    Tensor x = Random({rows, cols}, 1530, 2.0), g = Random({cols}, 1531), b = Random({cols}, 1532);
    Tensor dy = Random({rows, cols}, 1533), res = Random({rows, cols}, 1534);
    Tensor y = Tensor::Empty({rows, cols}, DType::kF32), mean = Tensor::Empty({rows}, DType::kF32),
           rstd = Tensor::Empty({rows}, DType::kF32);
    ops::LayerNormForward(x, g, b, 1e-5, &y, &mean, &rstd);
    Tensor gain0 = RandomF32({cols}, 1535), bias0 = RandomF32({cols}, 1536);
    Tensor dx = Tensor::Empty({rows, cols}, DType::kF32), dgain = gain0.Clone(), dbias = bias0.Clone();
    ops::LayerNormBackward(dy, x, g, mean, rstd, &dx, &dgain, &dbias);
    ops::Add(dx, res, &dx);

    Tensor xg = GpuBf16(x), gg = GpuBf16(g), dyg = GpuBf16(dy), rg = GpuBf16(res);
    Tensor mg = GpuF32(mean), sg = GpuF32(rstd);
    auto bf16 = [&] { return Tensor::Empty({rows, cols}, DType::kBF16, kGpu); };
    Tensor dxg = bf16(), dxg2 = bf16(), dgg = GpuF32(gain0), dbg = GpuF32(bias0), dgg2 = GpuF32(gain0),
           dbg2 = GpuF32(bias0);
    ops::LayerNormBackwardAdd(dyg, xg, gg, mg, sg, rg, &dxg, &dgg, &dbg);
    ops::LayerNormBackwardAdd(dyg, xg, gg, mg, sg, rg, &dxg2, &dgg2, &dbg2);
    ExpectClose(dxg, dx, kBf16Cancel, "LayerNormBackwardAdd dx" + at);
    ExpectClose(dgg, dgain, kF32Accum, "LayerNormBackwardAdd grad_gain" + at);
    ExpectClose(dbg, dbias, kF32Accum, "LayerNormBackwardAdd grad_bias" + at);
    ExpectBitwise(dxg, dxg2, "LayerNormBackwardAdd dx run twice" + at);
    ExpectBitwise(dgg, dgg2, "LayerNormBackwardAdd grad_gain run twice" + at);
    // The sequence: the same parameter gradients (same kernels), dx within a rounding.
    Tensor sdx = bf16(), sgg = GpuF32(gain0), sbg = GpuF32(bias0);
    ops::LayerNormBackward(dyg, xg, gg, mg, sg, &sdx, &sgg, &sbg);
    ops::Add(sdx, rg, &sdx);
    ExpectClose(dxg, sdx, kBf16ExtraRounding, "LayerNormBackwardAdd vs LayerNormBackward then Add" + at);
    ExpectBitwise(dgg, sgg, "LayerNormBackwardAdd grad_gain vs LayerNormBackward" + at);
    ExpectBitwise(dbg, sbg, "LayerNormBackwardAdd grad_bias vs LayerNormBackward" + at);

    for (bool with_gain : {true, false}) {
      const std::string rat = at + (with_gain ? "" : " without gain");
      Tensor gain = with_gain ? g : Tensor(), gaing = with_gain ? gg : Tensor();
      Tensor rrstd = Tensor::Empty({rows}, DType::kF32);
      ops::RmsNormForward(x, gain, 1e-6, &y, &rrstd);
      Tensor rdx = Tensor::Empty({rows, cols}, DType::kF32), rdgain = gain0.Clone();
      ops::RmsNormBackward(dy, x, gain, rrstd, &rdx, with_gain ? &rdgain : nullptr);
      ops::Add(rdx, res, &rdx);
      Tensor rsg = GpuF32(rrstd), rdxg = bf16(), rdxg2 = bf16(), rdgg = GpuF32(gain0), rdgg2 = GpuF32(gain0);
      ops::RmsNormBackwardAdd(dyg, xg, gaing, rsg, rg, &rdxg, with_gain ? &rdgg : nullptr);
      ops::RmsNormBackwardAdd(dyg, xg, gaing, rsg, rg, &rdxg2, with_gain ? &rdgg2 : nullptr);
      ExpectClose(rdxg, rdx, kBf16Cancel, "RmsNormBackwardAdd dx" + rat);
      ExpectBitwise(rdxg, rdxg2, "RmsNormBackwardAdd dx run twice" + rat);
      if (with_gain) {
        ExpectClose(rdgg, rdgain, kF32Accum, "RmsNormBackwardAdd grad_gain" + rat);
        ExpectBitwise(rdgg, rdgg2, "RmsNormBackwardAdd grad_gain run twice" + rat);
      }
    }
  }
}

}  // namespace
}  // namespace baton
