// Shape and type checks and backend dispatch for the ops of ops.h (attention
// and the fused ops are in ops_attention.cc and ops_fused.cc). Each op
// checks once, then hands raw pointers to the CPU kernel (layers/cpu/) or the
// CUDA kernel (layers/cuda/) for the tensors' device.
#include "layers/ops.h"

#include "layers/op_checks.h"

namespace baton::ops {
using namespace internal;

DType AccumulationType(DType compute) { return compute == DType::kF64 ? DType::kF64 : DType::kF32; }

void Convert(const Tensor& src, Tensor* dst) {
  CheckSameDevice(src, *dst, "Convert");
  BATON_CHECK(src.numel() == dst->numel(), "Convert: " << src.Describe() << " into " << dst->Describe());
  const int64_t n = src.numel();
  if (src.dtype() == dst->dtype()) {
    dst->CopyFrom(src.Reshape(dst->shape()));
    return;
  }
  if (!src.device().is_cpu()) {
#if BATON_CUDA
    cuda::Convert(src.raw(), src.dtype(), dst->raw(), dst->dtype(), n);
    return;
#else
    BATON_CHECK(false, "Convert on " << src.device().ToString() << ": " << CudaUnavailableReason());
#endif
  }
  // On the host, through double: exact for f32 <-> f64 and bf16 -> anything.
  auto get = [&](int64_t i) -> double {
    switch (src.dtype()) {
      case DType::kF32: return static_cast<const float*>(src.raw())[i];
      case DType::kF64: return static_cast<const double*>(src.raw())[i];
      case DType::kBF16: return Bf16ToFloat(static_cast<const uint16_t*>(src.raw())[i]);
      default: BATON_CHECK(false, "Convert from " << src.Describe());
    }
    return 0;
  };
  for (int64_t i = 0; i < n; ++i) {
    const double v = get(i);
    switch (dst->dtype()) {
      case DType::kF32: static_cast<float*>(dst->raw())[i] = static_cast<float>(v); break;
      case DType::kF64: static_cast<double*>(dst->raw())[i] = v; break;
      // f64 -> bf16 goes through f32: double rounding, harmless for what bf16 is used for.
      case DType::kBF16: static_cast<uint16_t*>(dst->raw())[i] = FloatToBf16(static_cast<float>(v)); break;
      default: BATON_CHECK(false, "Convert to " << dst->Describe());
    }
  }
}

Tensor Cast(const Tensor& src, DType dtype) {
  Tensor out = Tensor::Empty(src.shape(), dtype, src.device());
  Convert(src, &out);
  return out;
}

void Matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor* c, double alpha, double beta) {
  CheckSameType(a, b, "Matmul");
  CheckSameDevice(a, *c, "Matmul");
  BATON_CHECK(c->dtype() == a.dtype() || c->dtype() == AccumulationType(a.dtype()),
              "Matmul: output " << c->Describe() << " for " << DTypeName(a.dtype()) << " inputs");
  const int64_t ar = Rows(a), ac = Cols(a), br = Rows(b), bc = Cols(b);
  const int64_t m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
  BATON_CHECK((tb ? bc : br) == k, "Matmul: inner dimensions differ: " << a.Describe() << (ta ? "^T" : "") << " x "
                                                                       << b.Describe() << (tb ? "^T" : ""));
  BATON_CHECK(Rows(*c) == m && Cols(*c) == n, "Matmul: output " << c->Describe() << ", expected [" << m << ", " << n << "]");
  Dispatch(
      a, "Matmul",
      [&](auto t) {
        using T = decltype(t);
        cpu::Matmul<T>(P<T>(a), ta, P<T>(b), tb, P<T>(c), m, n, k, static_cast<T>(alpha), static_cast<T>(beta));
      },
      [&](auto) {
        cuda::Matmul(a.raw(), ta, b.raw(), tb, c->raw(), a.dtype(), c->dtype(), m, n, k, static_cast<float>(alpha),
                     static_cast<float>(beta));
      });
}

void CopyColumns(const Tensor& src, int64_t begin, Tensor* dst) {
  CheckSameType(src, *dst, "CopyColumns");
  BATON_CHECK(Rows(src) == Rows(*dst) && begin >= 0 && begin + Cols(*dst) <= Cols(src),
              "CopyColumns: " << Cols(*dst) << " columns from " << begin << " of " << src.Describe());
  Dispatch(
      src, "CopyColumns",
      [&](auto t) {
        using T = decltype(t);
        cpu::CopyColumns<T>(P<T>(src), Cols(src), begin, P<T>(dst), Rows(src), Cols(*dst));
      },
      [&](auto) {
        cuda::CopyColumns(src.raw(), Cols(src), begin, dst->raw(), Rows(src), Cols(*dst),
                          static_cast<int>(SizeOf(src.dtype())));
      });
}

void SetColumns(const Tensor& src, int64_t begin, Tensor* dst) {
  CheckSameType(src, *dst, "SetColumns");
  BATON_CHECK(Rows(src) == Rows(*dst) && begin >= 0 && begin + Cols(src) <= Cols(*dst),
              "SetColumns: " << src.Describe() << " at column " << begin << " of " << dst->Describe());
  Dispatch(
      src, "SetColumns",
      [&](auto t) {
        using T = decltype(t);
        cpu::SetColumns<T>(P<T>(src), Cols(src), begin, P<T>(dst), Rows(src), Cols(*dst));
      },
      [&](auto) {
        cuda::SetColumns(src.raw(), Cols(src), begin, dst->raw(), Rows(src), Cols(*dst),
                         static_cast<int>(SizeOf(src.dtype())));
      });
}

void AddBias(const Tensor& bias, Tensor* y) {
  CheckSameType(bias, *y, "AddBias");
  CheckShape(bias, {Cols(*y)}, "AddBias", "bias");
  Dispatch(
      *y, "AddBias", [&](auto t) { using T = decltype(t); cpu::AddBias<T>(P<T>(bias), P<T>(y), Rows(*y), Cols(*y)); },
      [&](auto) {
        RequireBf16(*y, "AddBias");
        cuda::AddBias(D(bias), D(y), Rows(*y), Cols(*y));
      });
}

void BiasGrad(const Tensor& dy, Tensor* grad_bias) {
  CheckAccumulates(*grad_bias, dy, "BiasGrad", "grad_bias");
  CheckShape(*grad_bias, {Cols(dy)}, "BiasGrad", "grad_bias");
  Dispatch(
      dy, "BiasGrad",
      [&](auto t) { using T = decltype(t); cpu::BiasGrad<T>(P<T>(dy), P<T>(grad_bias), Rows(dy), Cols(dy)); },
      [&](auto) {
        RequireBf16(dy, "BiasGrad");
        cuda::BiasGrad(D(dy), D<float>(grad_bias), Rows(dy), Cols(dy));
      });
}

void Add(const Tensor& a, const Tensor& b, Tensor* out) {
  CheckSameType(a, b, "Add");
  CheckSameType(a, *out, "Add");
  BATON_CHECK(a.numel() == b.numel() && a.numel() == out->numel(), "Add: " << a.Describe() << " + " << b.Describe() << " -> " << out->Describe());
  Dispatch(
      a, "Add", [&](auto t) { using T = decltype(t); cpu::Add<T>(P<T>(a), P<T>(b), P<T>(out), a.numel()); },
      [&](auto) { cuda::Add(a.raw(), b.raw(), out->raw(), a.numel(), a.dtype()); });
}

void Axpy(double alpha, const Tensor& src, Tensor* dst) {
  CheckSameType(src, *dst, "Axpy");
  BATON_CHECK(src.numel() == dst->numel(), "Axpy: " << src.Describe() << " into " << dst->Describe());
  Dispatch(
      src, "Axpy",
      [&](auto t) { using T = decltype(t); cpu::Axpy<T>(static_cast<T>(alpha), P<T>(src), P<T>(dst), src.numel()); },
      [&](auto) {
        BATON_CHECK(src.dtype() == DType::kF32, "Axpy on the GPU is for f32 gradients, got " << src.Describe());
        cuda::Axpy(static_cast<float>(alpha), D<float>(src), D<float>(dst), src.numel());
      });
}

void Scale(double factor, Tensor* x) {
  Dispatch(
      *x, "Scale",
      [&](auto t) {
        using T = decltype(t);
        T* p = P<T>(x);
        for (int64_t i = 0, n = x->numel(); i < n; ++i) p[i] = static_cast<T>(p[i] * factor);
      },
      [&](auto) {
        BATON_CHECK(x->dtype() == DType::kF32, "Scale on the GPU is for f32 gradients, got " << x->Describe());
        cuda::Scale(D<float>(x), x->numel(), static_cast<float>(factor));
      });
}

double Sum(const Tensor& x) {
  double total = 0;
  Dispatch(
      x, "Sum",
      [&](auto t) {
        using T = decltype(t);
        const T* p = P<T>(x);
        for (int64_t i = 0, n = x.numel(); i < n; ++i) total += static_cast<double>(p[i]);
      },
      [&](auto) {
        BATON_CHECK(x.dtype() == DType::kF32, "Sum on the GPU is for f32, got " << x.Describe());
        total = cuda::Sum(D<float>(x), x.numel());
      });
  return total;
}

std::vector<double> SumsOfSquares(const std::vector<const Tensor*>& tensors) {
  std::vector<double> out(tensors.size(), 0.0);
  std::vector<cuda::ArrayRef> on_gpu;
  std::vector<size_t> gpu_index;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = *tensors[i];
    if (!t.device().is_cpu()) {
      BATON_CHECK(t.dtype() == DType::kF32 || t.dtype() == DType::kBF16, "SumsOfSquares of " << t.Describe());
      on_gpu.push_back({t.raw(), t.numel(), t.dtype()});
      gpu_index.push_back(i);
      continue;
    }
    Dispatch(t, "SumsOfSquares", [&](auto tag) {
      using T = decltype(tag);
      const T* p = P<T>(t);
      double s = 0;
      for (int64_t k = 0, n = t.numel(); k < n; ++k) s += static_cast<double>(p[k]) * p[k];
      out[i] = s;
    }, [](auto) {});
  }
  if (!on_gpu.empty()) {
    std::vector<double> sums(on_gpu.size());
    Dispatch(*tensors[gpu_index[0]], "SumsOfSquares", [](auto) {},
             [&](auto) { cuda::SumsOfSquares(on_gpu.data(), static_cast<int>(on_gpu.size()), sums.data()); });
    for (size_t j = 0; j < sums.size(); ++j) out[gpu_index[j]] = sums[j];
  }
  return out;
}

void EmbeddingForward(const Tensor& ids, const Tensor& table, Tensor* out) {
  BATON_CHECK(ids.dtype() == DType::kI32, "EmbeddingForward: ids must be i32, got " << ids.Describe());
  CheckSameDevice(ids, table, "EmbeddingForward");
  CheckSameType(table, *out, "EmbeddingForward");
  CheckShape(*out, {ids.numel(), table.dim(1)}, "EmbeddingForward", "out");
  Dispatch(
      table, "EmbeddingForward",
      [&](auto t) {
        using T = decltype(t);
        cpu::EmbeddingForward<T>(P<int32_t>(ids), P<T>(table), P<T>(out), ids.numel(), table.dim(1));
      },
      [&](auto) {
        RequireBf16(table, "EmbeddingForward");
        cuda::EmbeddingForward(D<int32_t>(ids), D(table), D(out), ids.numel(), table.dim(1));
      });
}

void EmbeddingBackward(const Tensor& ids, const Tensor& dy, Tensor* grad_table) {
  CheckSameDevice(ids, dy, "EmbeddingBackward");
  CheckAccumulates(*grad_table, dy, "EmbeddingBackward", "grad_table");
  CheckShape(dy, {ids.numel(), grad_table->dim(1)}, "EmbeddingBackward", "dy");
  Dispatch(
      dy, "EmbeddingBackward",
      [&](auto t) {
        using T = decltype(t);
        cpu::EmbeddingBackward<T>(P<int32_t>(ids), P<T>(dy), P<T>(grad_table), ids.numel(), dy.dim(1));
      },
      [&](auto) {
        RequireBf16(dy, "EmbeddingBackward");
        cuda::EmbeddingBackward(D<int32_t>(ids), D(dy), D<float>(grad_table), ids.numel(), dy.dim(1));
      });
}

void AddPositions(const Tensor& positions, int64_t seq_len, Tensor* y) {
  CheckSameType(positions, *y, "AddPositions");
  BATON_CHECK(positions.dim(0) >= seq_len && positions.dim(1) == Cols(*y) && Rows(*y) % seq_len == 0,
              "AddPositions: table " << positions.Describe() << ", seq_len " << seq_len << ", y " << y->Describe());
  Dispatch(
      *y, "AddPositions",
      [&](auto t) {
        using T = decltype(t);
        cpu::AddPositions<T>(P<T>(positions), seq_len, P<T>(y), Rows(*y), Cols(*y));
      },
      [&](auto) {
        RequireBf16(*y, "AddPositions");
        cuda::AddPositions(D(positions), seq_len, D(y), Rows(*y), Cols(*y));
      });
}

void PositionsBackward(const Tensor& dy, int64_t seq_len, Tensor* grad_positions) {
  CheckAccumulates(*grad_positions, dy, "PositionsBackward", "grad_positions");
  BATON_CHECK(grad_positions->dim(0) >= seq_len && grad_positions->dim(1) == Cols(dy) && Rows(dy) % seq_len == 0,
              "PositionsBackward: table " << grad_positions->Describe() << ", dy " << dy.Describe());
  Dispatch(
      dy, "PositionsBackward",
      [&](auto t) {
        using T = decltype(t);
        cpu::PositionsBackward<T>(P<T>(dy), seq_len, P<T>(grad_positions), Rows(dy), Cols(dy));
      },
      [&](auto) {
        RequireBf16(dy, "PositionsBackward");
        cuda::PositionsBackward(D(dy), seq_len, D<float>(grad_positions), Rows(dy), Cols(dy));
      });
}

void LayerNormForward(const Tensor& x, const Tensor& gain, const Tensor& bias, double eps, Tensor* y, Tensor* mean,
                      Tensor* rstd) {
  const int64_t rows = Rows(x), cols = Cols(x);
  CheckShape(gain, {cols}, "LayerNormForward", "gain");
  CheckShape(bias, {cols}, "LayerNormForward", "bias");
  CheckShape(*y, x.shape(), "LayerNormForward", "y");
  CheckShape(*mean, {rows}, "LayerNormForward", "mean");
  CheckShape(*rstd, {rows}, "LayerNormForward", "rstd");
  for (const Tensor* t : {&gain, &bias, static_cast<const Tensor*>(y)}) CheckSameType(x, *t, "LayerNormForward");
  CheckAccumulates(*mean, x, "LayerNormForward", "mean");
  CheckAccumulates(*rstd, x, "LayerNormForward", "rstd");
  Dispatch(
      x, "LayerNormForward",
      [&](auto t) {
        using T = decltype(t);
        cpu::LayerNormForward<T>(P<T>(x), P<T>(gain), P<T>(bias), static_cast<T>(eps), P<T>(y), P<T>(mean), P<T>(rstd),
                                 rows, cols);
      },
      [&](auto) {
        RequireBf16(x, "LayerNormForward");
        cuda::LayerNormForward(D(x), D(gain), D(bias), static_cast<float>(eps), D(y), D<float>(mean), D<float>(rstd),
                               rows, cols);
      });
}

void LayerNormBackward(const Tensor& dy, const Tensor& x, const Tensor& gain, const Tensor& mean, const Tensor& rstd,
                       Tensor* dx, Tensor* grad_gain, Tensor* grad_bias) {
  CheckShape(dy, x.shape(), "LayerNormBackward", "dy");
  CheckShape(*dx, x.shape(), "LayerNormBackward", "dx");
  CheckShape(*grad_gain, gain.shape(), "LayerNormBackward", "grad_gain");
  CheckShape(*grad_bias, gain.shape(), "LayerNormBackward", "grad_bias");
  for (const Tensor* t : {&dy, &gain, static_cast<const Tensor*>(dx)}) CheckSameType(x, *t, "LayerNormBackward");
  for (const Tensor* t : {&mean, &rstd, static_cast<const Tensor*>(grad_gain), static_cast<const Tensor*>(grad_bias)})
    CheckAccumulates(*t, x, "LayerNormBackward", "statistic or gradient");
  Dispatch(
      x, "LayerNormBackward",
      [&](auto t) {
        using T = decltype(t);
        cpu::LayerNormBackward<T>(P<T>(dy), P<T>(x), P<T>(gain), P<T>(mean), P<T>(rstd), P<T>(dx), P<T>(grad_gain),
                                  P<T>(grad_bias), Rows(x), Cols(x));
      },
      [&](auto) {
        RequireBf16(x, "LayerNormBackward");
        cuda::LayerNormBackward(D(dy), D(x), D(gain), D<float>(mean), D<float>(rstd), D(dx), D<float>(grad_gain),
                                D<float>(grad_bias), Rows(x), Cols(x));
      });
}

void RmsNormForward(const Tensor& x, const Tensor& gain, double eps, Tensor* y, Tensor* rstd) {
  if (gain.defined()) {
    CheckShape(gain, {Cols(x)}, "RmsNormForward", "gain");
    CheckSameType(x, gain, "RmsNormForward");
  }
  CheckShape(*y, x.shape(), "RmsNormForward", "y");
  CheckShape(*rstd, {Rows(x)}, "RmsNormForward", "rstd");
  CheckSameType(x, *y, "RmsNormForward");
  CheckAccumulates(*rstd, x, "RmsNormForward", "rstd");
  Dispatch(
      x, "RmsNormForward",
      [&](auto t) {
        using T = decltype(t);
        cpu::RmsNormForward<T>(P<T>(x), P<T>(gain), static_cast<T>(eps), P<T>(y), P<T>(rstd), Rows(x), Cols(x));
      },
      [&](auto) {
        RequireBf16(x, "RmsNormForward");
        cuda::RmsNormForward(D(x), D(gain), static_cast<float>(eps), D(y), D<float>(rstd), Rows(x), Cols(x));
      });
}

void RmsNormBackward(const Tensor& dy, const Tensor& x, const Tensor& gain, const Tensor& rstd, Tensor* dx,
                     Tensor* grad_gain) {
  CheckShape(dy, x.shape(), "RmsNormBackward", "dy");
  CheckShape(*dx, x.shape(), "RmsNormBackward", "dx");
  CheckSameType(x, dy, "RmsNormBackward");
  CheckSameType(x, *dx, "RmsNormBackward");
  CheckAccumulates(rstd, x, "RmsNormBackward", "rstd");
  if (grad_gain) CheckAccumulates(*grad_gain, x, "RmsNormBackward", "grad_gain");
  Dispatch(
      x, "RmsNormBackward",
      [&](auto t) {
        using T = decltype(t);
        cpu::RmsNormBackward<T>(P<T>(dy), P<T>(x), P<T>(gain), P<T>(rstd), P<T>(dx), P<T>(grad_gain), Rows(x), Cols(x));
      },
      [&](auto) {
        RequireBf16(x, "RmsNormBackward");
        cuda::RmsNormBackward(D(dy), D(x), D(gain), D<float>(rstd), D(dx), D<float>(grad_gain), Rows(x), Cols(x));
      });
}

void GeluForward(const Tensor& x, Tensor* y) {
  CheckSameType(x, *y, "GeluForward");
  CheckShape(*y, x.shape(), "GeluForward", "y");
  Dispatch(
      x, "GeluForward", [&](auto t) { using T = decltype(t); cpu::GeluForward<T>(P<T>(x), P<T>(y), x.numel()); },
      [&](auto) {
        RequireBf16(x, "GeluForward");
        cuda::GeluForward(D(x), D(y), x.numel());
      });
}

void GeluBackward(const Tensor& dy, const Tensor& x, Tensor* dx) {
  CheckShape(dy, x.shape(), "GeluBackward", "dy");
  CheckShape(*dx, x.shape(), "GeluBackward", "dx");
  CheckSameType(x, dy, "GeluBackward");
  CheckSameType(x, *dx, "GeluBackward");
  Dispatch(
      x, "GeluBackward",
      [&](auto t) { using T = decltype(t); cpu::GeluBackward<T>(P<T>(dy), P<T>(x), P<T>(dx), x.numel()); },
      [&](auto) {
        RequireBf16(x, "GeluBackward");
        cuda::GeluBackward(D(dy), D(x), D(dx), x.numel());
      });
}

void Rope(Tensor* x, int64_t first_column, int64_t columns, int64_t seq_len, int64_t head_dim, RopeStyle style,
          double base, bool inverse) {
  const int64_t rows = Rows(*x), cols = Cols(*x);
  BATON_CHECK(head_dim > 0 && head_dim % 2 == 0 && columns >= 0 && columns % head_dim == 0 && first_column >= 0 &&
                  first_column + columns <= cols && seq_len > 0 && rows % seq_len == 0,
              "Rope: " << x->Describe() << ", columns [" << first_column << ", " << first_column + columns
                       << ") in heads of " << head_dim << " (head size must be even), seq_len " << seq_len);
  const bool interleaved = style == RopeStyle::kInterleaved;
  const int64_t heads = columns / head_dim;
  Dispatch(
      *x, "Rope",
      [&](auto t) {
        using T = decltype(t);
        cpu::Rope<T>(P<T>(x) + first_column, rows, cols, seq_len, heads, head_dim, interleaved, base, inverse);
      },
      [&](auto) {
        RequireBf16(*x, "Rope");
        cuda::Rope(D(x) + first_column, rows, cols, seq_len, heads, head_dim, interleaved, base, inverse);
      });
}

void SoftmaxCrossEntropy(const Tensor& logits, const Tensor& targets, int64_t vocab, Tensor* losses, Tensor* dlogits,
                         double grad_scale) {
  const int64_t rows = Rows(logits), padded = Cols(logits);
  BATON_CHECK(targets.dtype() == DType::kI32 && targets.numel() == rows,
              "SoftmaxCrossEntropy: targets " << targets.Describe() << " for logits " << logits.Describe());
  CheckSameDevice(logits, targets, "SoftmaxCrossEntropy");
  BATON_CHECK(vocab <= padded, "SoftmaxCrossEntropy: vocab " << vocab << " > logits width " << padded);
  CheckShape(*losses, {rows}, "SoftmaxCrossEntropy", "losses");
  CheckAccumulates(*losses, logits, "SoftmaxCrossEntropy", "losses");
  if (dlogits) {
    CheckShape(*dlogits, logits.shape(), "SoftmaxCrossEntropy", "dlogits");
    CheckSameType(logits, *dlogits, "SoftmaxCrossEntropy");
  }
  Dispatch(
      logits, "SoftmaxCrossEntropy",
      [&](auto t) {
        using T = decltype(t);
        cpu::SoftmaxCrossEntropy<T>(P<T>(logits), P<int32_t>(targets), rows, padded, vocab, P<T>(losses), P<T>(dlogits),
                                    static_cast<T>(grad_scale));
      },
      [&](auto) {
        RequireBf16(logits, "SoftmaxCrossEntropy");
        cuda::SoftmaxCrossEntropy(D(logits), D<int32_t>(targets), rows, padded, vocab, D<float>(losses), D(dlogits),
                                  static_cast<float>(grad_scale));
      });
}

}  // namespace baton::ops
