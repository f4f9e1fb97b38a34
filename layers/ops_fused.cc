// Checks and dispatch of the fused ops (ops.h): on the CPU each runs the
// sequence of unfused kernels it replaces, so the reference is unchanged.
#include "layers/op_checks.h"

namespace baton::ops {
using namespace internal;

namespace {
// a, b and sum: one shape and type (sum written as a + b).
void CheckAddInputs(const Tensor& a, const Tensor& b, const Tensor& sum, const char* op) {
  CheckShape(b, a.shape(), op, "b");
  CheckShape(sum, a.shape(), op, "sum");
  CheckSameType(a, b, op);
  CheckSameType(a, sum, op);
}
void CheckNoAlias(const Tensor& out, const Tensor& in, const char* op, const char* what) {
  BATON_CHECK(!out.defined() || !in.defined() || out.raw() != in.raw(), op << ": the output may not alias " << what);
}
}  // namespace

void LinearForward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor* y) {
  CheckSameType(x, w, "LinearForward");
  CheckSameType(x, *y, "LinearForward");
  BATON_CHECK(w.rank() == 2 && w.dim(1) == Cols(x),
              "LinearForward: weight " << w.Describe() << " for input " << x.Describe());
  const int64_t m = Rows(x), n = w.dim(0), k = Cols(x);
  BATON_CHECK(Rows(*y) == m && Cols(*y) == n,
              "LinearForward: output " << y->Describe() << ", expected [" << m << ", " << n << "]");
  if (bias.defined()) {
    CheckSameType(x, bias, "LinearForward");
    CheckShape(bias, {n}, "LinearForward", "bias");
  }
  Dispatch(
      x, "LinearForward",
      [&](auto t) {
        using T = decltype(t);
        cpu::Matmul<T>(P<T>(x), false, P<T>(w), true, P<T>(y), m, n, k, static_cast<T>(1.0), static_cast<T>(0.0));
        if (bias.defined()) cpu::AddBias<T>(P<T>(bias), P<T>(y), m, n);
      },
      [&](auto) {
        if (!bias.defined()) {  // a plain product, for any type Matmul takes
          cuda::Matmul(x.raw(), false, w.raw(), true, y->raw(), x.dtype(), y->dtype(), m, n, k, 1.f, 0.f);
          return;
        }
        RequireBf16(x, "LinearForward");
        cuda::LinearForward(D(x), D(w), D(bias), D(y), m, n, k);
      });
}

void LinearBackwardInputGelu(const Tensor& dy, const Tensor& w, const Tensor& f, Tensor* d_f) {
  CheckSameType(dy, w, "LinearBackwardInputGelu");
  CheckSameType(dy, f, "LinearBackwardInputGelu");
  CheckSameType(dy, *d_f, "LinearBackwardInputGelu");
  BATON_CHECK(w.rank() == 2 && w.dim(0) == Cols(dy),
              "LinearBackwardInputGelu: weight " << w.Describe() << " for output gradient " << dy.Describe());
  const int64_t m = Rows(dy), n = w.dim(1), k = w.dim(0);
  BATON_CHECK(Rows(f) == m && Cols(f) == n,
              "LinearBackwardInputGelu: GELU input " << f.Describe() << ", expected [" << m << ", " << n << "]");
  CheckShape(*d_f, f.shape(), "LinearBackwardInputGelu", "d_f");
  CheckNoAlias(*d_f, f, "LinearBackwardInputGelu", "f");
  CheckNoAlias(*d_f, dy, "LinearBackwardInputGelu", "dy");
  Dispatch(
      dy, "LinearBackwardInputGelu",
      [&](auto t) {
        using T = decltype(t);
        // In place: GeluBackward reads each element of its dy before writing that element.
        cpu::Matmul<T>(P<T>(dy), false, P<T>(w), false, P<T>(d_f), m, n, k, static_cast<T>(1.0), static_cast<T>(0.0));
        cpu::GeluBackward<T>(P<T>(d_f), P<T>(f), P<T>(d_f), m * n);
      },
      [&](auto) {
        RequireBf16(dy, "LinearBackwardInputGelu");
        cuda::LinearBackwardInputGelu(D(dy), D(w), D(f), D(d_f), m, n, k);
      });
}

void AddLayerNormForward(const Tensor& a, const Tensor& b, const Tensor& gain, const Tensor& bias, double eps,
                         Tensor* sum, Tensor* y, Tensor* mean, Tensor* rstd) {
  const int64_t rows = Rows(a), cols = Cols(a);
  CheckAddInputs(a, b, *sum, "AddLayerNormForward");
  CheckShape(gain, {cols}, "AddLayerNormForward", "gain");
  CheckShape(bias, {cols}, "AddLayerNormForward", "bias");
  CheckShape(*y, a.shape(), "AddLayerNormForward", "y");
  CheckShape(*mean, {rows}, "AddLayerNormForward", "mean");
  CheckShape(*rstd, {rows}, "AddLayerNormForward", "rstd");
  for (const Tensor* t : {&gain, &bias, static_cast<const Tensor*>(y)}) CheckSameType(a, *t, "AddLayerNormForward");
  CheckAccumulates(*mean, a, "AddLayerNormForward", "mean");
  CheckAccumulates(*rstd, a, "AddLayerNormForward", "rstd");
  CheckNoAlias(*y, *sum, "AddLayerNormForward", "sum");
  Dispatch(
      a, "AddLayerNormForward",
      [&](auto t) {
        using T = decltype(t);
        cpu::Add<T>(P<T>(a), P<T>(b), P<T>(sum), a.numel());
        cpu::LayerNormForward<T>(P<T>(sum), P<T>(gain), P<T>(bias), static_cast<T>(eps), P<T>(y), P<T>(mean),
                                 P<T>(rstd), rows, cols);
      },
      [&](auto) {
        RequireBf16(a, "AddLayerNormForward");
        cuda::AddLayerNormForward(D(a), D(b), D(gain), D(bias), static_cast<float>(eps), D(sum), D(y),
                                  D<float>(mean), D<float>(rstd), rows, cols);
      });
}

void AddRmsNormForward(const Tensor& a, const Tensor& b, const Tensor& gain, double eps, Tensor* sum, Tensor* y,
                       Tensor* rstd) {
  const int64_t rows = Rows(a), cols = Cols(a);
  CheckAddInputs(a, b, *sum, "AddRmsNormForward");
  if (gain.defined()) {
    CheckShape(gain, {cols}, "AddRmsNormForward", "gain");
    CheckSameType(a, gain, "AddRmsNormForward");
  }
  CheckShape(*y, a.shape(), "AddRmsNormForward", "y");
  CheckShape(*rstd, {rows}, "AddRmsNormForward", "rstd");
  CheckSameType(a, *y, "AddRmsNormForward");
  CheckAccumulates(*rstd, a, "AddRmsNormForward", "rstd");
  CheckNoAlias(*y, *sum, "AddRmsNormForward", "sum");
  Dispatch(
      a, "AddRmsNormForward",
      [&](auto t) {
        using T = decltype(t);
        cpu::Add<T>(P<T>(a), P<T>(b), P<T>(sum), a.numel());
        cpu::RmsNormForward<T>(P<T>(sum), P<T>(gain), static_cast<T>(eps), P<T>(y), P<T>(rstd), rows, cols);
      },
      [&](auto) {
        RequireBf16(a, "AddRmsNormForward");
        cuda::AddRmsNormForward(D(a), D(b), D(gain), static_cast<float>(eps), D(sum), D(y), D<float>(rstd), rows,
                                cols);
      });
}

void LayerNormBackwardAdd(const Tensor& dy, const Tensor& x, const Tensor& gain, const Tensor& mean,
                          const Tensor& rstd, const Tensor& residual, Tensor* dx, Tensor* grad_gain,
                          Tensor* grad_bias) {
  CheckShape(dy, x.shape(), "LayerNormBackwardAdd", "dy");
  CheckShape(residual, x.shape(), "LayerNormBackwardAdd", "residual");
  CheckShape(*dx, x.shape(), "LayerNormBackwardAdd", "dx");
  CheckShape(*grad_gain, gain.shape(), "LayerNormBackwardAdd", "grad_gain");
  CheckShape(*grad_bias, gain.shape(), "LayerNormBackwardAdd", "grad_bias");
  for (const Tensor* t : {&dy, &gain, &residual, static_cast<const Tensor*>(dx)})
    CheckSameType(x, *t, "LayerNormBackwardAdd");
  for (const Tensor* t : {&mean, &rstd, static_cast<const Tensor*>(grad_gain), static_cast<const Tensor*>(grad_bias)})
    CheckAccumulates(*t, x, "LayerNormBackwardAdd", "statistic or gradient");
  CheckNoAlias(*dx, dy, "LayerNormBackwardAdd", "dy");
  CheckNoAlias(*dx, x, "LayerNormBackwardAdd", "x");
  CheckNoAlias(*dx, residual, "LayerNormBackwardAdd", "residual");
  Dispatch(
      x, "LayerNormBackwardAdd",
      [&](auto t) {
        using T = decltype(t);
        cpu::LayerNormBackward<T>(P<T>(dy), P<T>(x), P<T>(gain), P<T>(mean), P<T>(rstd), P<T>(dx), P<T>(grad_gain),
                                  P<T>(grad_bias), Rows(x), Cols(x));
        cpu::Add<T>(P<T>(dx), P<T>(residual), P<T>(dx), x.numel());
      },
      [&](auto) {
        RequireBf16(x, "LayerNormBackwardAdd");
        cuda::LayerNormBackwardAdd(D(dy), D(x), D(gain), D<float>(mean), D<float>(rstd), D(residual), D(dx),
                                   D<float>(grad_gain), D<float>(grad_bias), Rows(x), Cols(x));
      });
}

void RmsNormBackwardAdd(const Tensor& dy, const Tensor& x, const Tensor& gain, const Tensor& rstd,
                        const Tensor& residual, Tensor* dx, Tensor* grad_gain) {
  CheckShape(dy, x.shape(), "RmsNormBackwardAdd", "dy");
  CheckShape(residual, x.shape(), "RmsNormBackwardAdd", "residual");
  CheckShape(*dx, x.shape(), "RmsNormBackwardAdd", "dx");
  for (const Tensor* t : {&dy, &residual, static_cast<const Tensor*>(dx)}) CheckSameType(x, *t, "RmsNormBackwardAdd");
  CheckAccumulates(rstd, x, "RmsNormBackwardAdd", "rstd");
  if (grad_gain) CheckAccumulates(*grad_gain, x, "RmsNormBackwardAdd", "grad_gain");
  CheckNoAlias(*dx, dy, "RmsNormBackwardAdd", "dy");
  CheckNoAlias(*dx, x, "RmsNormBackwardAdd", "x");
  CheckNoAlias(*dx, residual, "RmsNormBackwardAdd", "residual");
  Dispatch(
      x, "RmsNormBackwardAdd",
      [&](auto t) {
        using T = decltype(t);
        cpu::RmsNormBackward<T>(P<T>(dy), P<T>(x), P<T>(gain), P<T>(rstd), P<T>(dx), P<T>(grad_gain), Rows(x),
                                Cols(x));
        cpu::Add<T>(P<T>(dx), P<T>(residual), P<T>(dx), x.numel());
      },
      [&](auto) {
        RequireBf16(x, "RmsNormBackwardAdd");
        cuda::RmsNormBackwardAdd(D(dy), D(x), D(gain), D<float>(rstd), D(residual), D(dx), D<float>(grad_gain),
                                 Rows(x), Cols(x));
      });
}

}  // namespace baton::ops
