// The fused ops (ops.h, "Fused ops") on the CPU: each must give exactly the bits of
// the sequence of ops it replaces, in f32 and f64, so that fusing changes no CPU
// result (the CPU is the reference every layout and GPU result is compared with).
// Also the layers that use them: Norm::ForwardAdd / Backward with a residual, and
// Linear::Forward / BackwardInputGelu.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/ops.h"
#include "tests/layers/grad_check.h"

namespace baton {
namespace {
using testing::RandomTensor;

// N(0, scale) values of `dtype` (f32 or f64) on the CPU.
Tensor Random(const Shape& shape, uint64_t stream, DType dtype, double scale = 1.0) {
  return ops::Cast(RandomTensor(shape, stream, scale), dtype);
}

void ExpectBitwise(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  const std::vector<double> a = got.ToDoubles(), b = want.ToDoubles();
  int64_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i] && std::signbit(a[i]) == std::signbit(b[i])) continue;
    if (bad < 3) ADD_FAILURE() << what << ": element " << i << " is " << a[i] << ", the sequence gives " << b[i];
    ++bad;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << a.size() << " elements differ";
}

std::string At(DType dt, int64_t rows, int64_t cols) {
  return std::string(" (") + DTypeName(dt) + ", [" + std::to_string(rows) + ", " + std::to_string(cols) + "])";
}

const DType kTypes[] = {DType::kF32, DType::kF64};

TEST(FusedOps, LinearForwardIsMatmulThenAddBias) {
  for (DType dt : kTypes) {
    for (bool with_bias : {true, false}) {
      const int64_t rows = 37, in = 53, out = 29;
      const std::string at = At(dt, rows, out) + (with_bias ? "" : " without bias");
      Tensor x = Random({rows, in}, 1, dt), w = Random({out, in}, 2, dt);
      Tensor bias = with_bias ? Random({out}, 3, dt) : Tensor();
      Tensor want = Tensor::Empty({rows, out}, dt);
      ops::Matmul(x, false, w, true, &want);
      if (with_bias) ops::AddBias(bias, &want);
      Tensor got = Tensor::Empty({rows, out}, dt);
      ops::LinearForward(x, w, bias, &got);
      ExpectBitwise(got, want, "LinearForward" + at);
    }
  }
}

TEST(FusedOps, LinearBackwardInputGeluIsMatmulThenGeluBackward) {
  for (DType dt : kTypes) {
    const int64_t rows = 41, in = 24, out = 19;  // f: [rows, in], dy: [rows, out]
    Tensor dy = Random({rows, out}, 10, dt), w = Random({out, in}, 11, dt), f = Random({rows, in}, 12, dt, 2.0);
    Tensor dg = Tensor::Empty({rows, in}, dt), want = Tensor::Empty({rows, in}, dt);
    ops::Matmul(dy, false, w, false, &dg);
    ops::GeluBackward(dg, f, &want);
    Tensor got = Tensor::Empty({rows, in}, dt);
    ops::LinearBackwardInputGelu(dy, w, f, &got);
    ExpectBitwise(got, want, "LinearBackwardInputGelu" + At(dt, rows, in));
  }
}

TEST(FusedOps, AddNormForwardIsAddThenNorm) {
  for (DType dt : kTypes) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{33, 77}, {8, 256}}) {
      const std::string at = At(dt, rows, cols);
      Tensor a = Random({rows, cols}, 20, dt), b = Random({rows, cols}, 21, dt, 3.0);
      Tensor g = Random({cols}, 22, dt), bias = Random({cols}, 23, dt);
      const DType st = ops::AccumulationType(dt);

      Tensor sum = Tensor::Empty({rows, cols}, dt), y = Tensor::Empty({rows, cols}, dt);
      Tensor mean = Tensor::Empty({rows}, st), rstd = Tensor::Empty({rows}, st);
      ops::Add(a, b, &sum);
      ops::LayerNormForward(sum, g, bias, 1e-5, &y, &mean, &rstd);
      // The sum written over a (how the block calls it).
      Tensor fa = a.Clone(), fy = Tensor::Empty({rows, cols}, dt);
      Tensor fmean = Tensor::Empty({rows}, st), frstd = Tensor::Empty({rows}, st);
      ops::AddLayerNormForward(fa, b, g, bias, 1e-5, &fa, &fy, &fmean, &frstd);
      ExpectBitwise(fa, sum, "AddLayerNormForward sum" + at);
      ExpectBitwise(fy, y, "AddLayerNormForward y" + at);
      ExpectBitwise(fmean, mean, "AddLayerNormForward mean" + at);
      ExpectBitwise(frstd, rstd, "AddLayerNormForward rstd" + at);

      for (bool with_gain : {true, false}) {
        const Tensor gain = with_gain ? g : Tensor();
        const std::string rat = at + (with_gain ? "" : " without gain");
        ops::RmsNormForward(sum, gain, 1e-6, &y, &rstd);
        Tensor fsum = Tensor::Empty({rows, cols}, dt);
        ops::AddRmsNormForward(a, b, gain, 1e-6, &fsum, &fy, &frstd);
        ExpectBitwise(fsum, sum, "AddRmsNormForward sum" + rat);
        ExpectBitwise(fy, y, "AddRmsNormForward y" + rat);
        ExpectBitwise(frstd, rstd, "AddRmsNormForward rstd" + rat);
      }
    }
  }
}

TEST(FusedOps, NormBackwardAddIsNormBackwardThenAdd) {
  for (DType dt : kTypes) {
    const int64_t rows = 45, cols = 40;
    const std::string at = At(dt, rows, cols);
    const DType st = ops::AccumulationType(dt);
    Tensor x = Random({rows, cols}, 30, dt, 2.0), g = Random({cols}, 31, dt), bias = Random({cols}, 32, dt);
    Tensor dy = Random({rows, cols}, 33, dt), res = Random({rows, cols}, 34, dt);
    Tensor y = Tensor::Empty({rows, cols}, dt), mean = Tensor::Empty({rows}, st), rstd = Tensor::Empty({rows}, st);
    ops::LayerNormForward(x, g, bias, 1e-5, &y, &mean, &rstd);

    Tensor gg0 = Random({cols}, 35, st), gb0 = Random({cols}, 36, st);  // gradients accumulate (+=)
    Tensor dx = Tensor::Empty({rows, cols}, dt), gg = gg0.Clone(), gb = gb0.Clone();
    ops::LayerNormBackward(dy, x, g, mean, rstd, &dx, &gg, &gb);
    ops::Add(dx, res, &dx);
    Tensor fdx = Tensor::Empty({rows, cols}, dt), fgg = gg0.Clone(), fgb = gb0.Clone();
    ops::LayerNormBackwardAdd(dy, x, g, mean, rstd, res, &fdx, &fgg, &fgb);
    ExpectBitwise(fdx, dx, "LayerNormBackwardAdd dx" + at);
    ExpectBitwise(fgg, gg, "LayerNormBackwardAdd grad_gain" + at);
    ExpectBitwise(fgb, gb, "LayerNormBackwardAdd grad_bias" + at);

    for (bool with_gain : {true, false}) {
      const Tensor gain = with_gain ? g : Tensor();
      const std::string rat = at + (with_gain ? "" : " without gain");
      ops::RmsNormForward(x, gain, 1e-6, &y, &rstd);
      Tensor rgg = gg0.Clone(), frgg = gg0.Clone();
      ops::RmsNormBackward(dy, x, gain, rstd, &dx, with_gain ? &rgg : nullptr);
      ops::Add(dx, res, &dx);
      ops::RmsNormBackwardAdd(dy, x, gain, rstd, res, &fdx, with_gain ? &frgg : nullptr);
      ExpectBitwise(fdx, dx, "RmsNormBackwardAdd dx" + rat);
      ExpectBitwise(frgg, rgg, "RmsNormBackwardAdd grad_gain" + rat);
    }
  }
}

TEST(FusedOpsDeathTest, RejectsAliasingThatWouldChangeTheResult) {
  const int64_t rows = 4, cols = 8;
  Tensor x = Random({rows, cols}, 40, DType::kF32), g = Random({cols}, 41, DType::kF32);
  Tensor b = Random({cols}, 42, DType::kF32), dy = Random({rows, cols}, 43, DType::kF32);
  Tensor mean = Tensor::Empty({rows}, DType::kF32), rstd = Tensor::Empty({rows}, DType::kF32);
  Tensor y = Tensor::Empty({rows, cols}, DType::kF32);
  ops::LayerNormForward(x, g, b, 1e-5, &y, &mean, &rstd);
  Tensor gg = Tensor::Zeros({cols}, DType::kF32), gb = Tensor::Zeros({cols}, DType::kF32);
  Tensor res = dy.Clone();
  // dx over the residual: LayerNormBackward would overwrite the residual before the Add reads it.
  EXPECT_DEATH(ops::LayerNormBackwardAdd(dy, x, g, mean, rstd, res, &res, &gg, &gb), "may not alias residual");
  Tensor sum = x.Clone();
  EXPECT_DEATH(ops::AddLayerNormForward(x, dy, g, b, 1e-5, &sum, &sum, &mean, &rstd), "may not alias sum");
  Tensor w = Random({cols, cols}, 44, DType::kF32), f = Random({rows, cols}, 45, DType::kF32);
  EXPECT_DEATH(ops::LinearBackwardInputGelu(dy, w, f, &f), "may not alias f");
}

// The layers: the fused calls give the unfused calls' bits.
TEST(FusedOps, NormForwardAddAndBackwardWithResidual) {
  for (DType dt : kTypes) {
    for (NormKind kind : {NormKind::kLayerNorm, NormKind::kRmsNorm, NormKind::kRmsNormNoGain}) {
      const int64_t rows = 12, dim = 24;
      const std::string at = At(dt, rows, dim) + " kind " + std::to_string(static_cast<int>(kind));
      Norm fused("n", dim, kind, 1e-5, dt, Device::CPU()), plain("n", dim, kind, 1e-5, dt, Device::CPU());
      std::vector<Param*> pf, pp;
      fused.AppendParams(&pf);
      plain.AppendParams(&pp);
      for (size_t i = 0; i < pf.size(); ++i) {
        Tensor v = Random(pf[i]->value.shape(), 50 + i, dt);
        pf[i]->value.CopyFrom(v);
        pp[i]->value.CopyFrom(v);
      }
      Tensor a = Random({rows, dim}, 60, dt), b = Random({rows, dim}, 61, dt);
      Tensor dy = Random({rows, dim}, 62, dt), res = Random({rows, dim}, 63, dt);

      Tensor sum = a.Clone();
      ops::Add(sum, b, &sum);
      Norm::Saved sp, sf;
      Tensor y = plain.Forward(sum, &sp);
      Tensor fsum = a.Clone();
      Tensor fy = fused.ForwardAdd(fsum, b, &fsum, &sf);
      ExpectBitwise(fsum, sum, "Norm::ForwardAdd sum" + at);
      ExpectBitwise(fy, y, "Norm::ForwardAdd y" + at);
      ExpectBitwise(sf.x, sum, "Norm::ForwardAdd saves the sum" + at);

      Tensor dx = plain.Backward(dy, sp);
      ops::Add(dx, res, &dx);
      Tensor fdx = fused.Backward(dy, sf, &res);
      ExpectBitwise(fdx, dx, "Norm::Backward with a residual" + at);
      for (size_t i = 0; i < pf.size(); ++i) ExpectBitwise(pf[i]->grad, pp[i]->grad, pf[i]->name + " grad" + at);
    }
  }
}

TEST(FusedOps, LinearBackwardInputGeluLayer) {
  for (DType dt : kTypes) {
    const int64_t rows = 10, in = 16, out = 12;
    Linear lin("l", in, out, true, dt, Device::CPU());
    lin.weight().value.CopyFrom(Random({out, in}, 70, dt));
    lin.bias()->value.CopyFrom(Random({out}, 71, dt));
    Tensor x = Random({rows, in}, 72, dt), dy = Random({rows, out}, 73, dt), f = Random({rows, in}, 74, dt);
    Tensor want = Tensor::Empty({rows, out}, dt);
    ops::Matmul(x, false, lin.weight().compute, true, &want);
    ops::AddBias(lin.bias()->compute, &want);
    ExpectBitwise(lin.Forward(x), want, std::string("Linear::Forward ") + DTypeName(dt));
    Tensor dg = lin.BackwardInput(dy), dgelu = Tensor::Empty({rows, in}, dt);
    ops::GeluBackward(dg, f, &dgelu);
    ExpectBitwise(lin.BackwardInputGelu(dy, f), dgelu, std::string("Linear::BackwardInputGelu ") + DTypeName(dt));
  }
}

}  // namespace
}  // namespace baton
