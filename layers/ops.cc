// Shape checks and backend dispatch for every op in ops.h. The CUDA backend
// adds its branch in Dispatch; nothing else changes.
#include "layers/ops.h"

#include "layers/cpu/kernels.h"

namespace baton::ops {
namespace {

void CheckSameDevice(const Tensor& a, const Tensor& b, const char* op) {
  BATON_CHECK(a.device() == b.device(), op << ": " << a.Describe() << " and " << b.Describe() << " on different devices");
}
void CheckSameType(const Tensor& a, const Tensor& b, const char* op) {
  BATON_CHECK(a.dtype() == b.dtype(), op << ": " << a.Describe() << " and " << b.Describe() << " differ in dtype");
  CheckSameDevice(a, b, op);
}
void CheckShape(const Tensor& t, const Shape& want, const char* op, const char* what) {
  BATON_CHECK(t.shape() == want, op << ": " << what << " is " << t.Describe() << ", expected " << ShapeString(want));
}
int64_t Cols(const Tensor& t) { return t.rank() == 0 ? 1 : t.dim(-1); }
int64_t Rows(const Tensor& t) { return t.numel() / std::max<int64_t>(1, Cols(t)); }

// Runs `fn` with T bound to the float type of `t` on its backend.
template <typename Fn>
void Dispatch(const Tensor& t, const char* op, Fn&& fn) {
  BATON_CHECK(t.device().is_cpu(), op << " on " << t.device().ToString() << ": this build has only the CPU backend");
  switch (t.dtype()) {
    case DType::kF32: fn(float{}); break;
    case DType::kF64: fn(double{}); break;
    default: BATON_CHECK(false, op << " does not support " << t.Describe());
  }
}
template <typename T> T* P(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
template <typename T> T* P(Tensor* t) { return t && t->defined() ? t->data<T>() : nullptr; }

}  // namespace

void Matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor* c, double alpha, double beta) {
  CheckSameType(a, b, "Matmul");
  CheckSameType(a, *c, "Matmul");
  const int64_t ar = Rows(a), ac = Cols(a), br = Rows(b), bc = Cols(b);
  const int64_t m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
  BATON_CHECK((tb ? bc : br) == k, "Matmul: inner dimensions differ: " << a.Describe() << (ta ? "^T" : "") << " x "
                                                                       << b.Describe() << (tb ? "^T" : ""));
  BATON_CHECK(Rows(*c) == m && Cols(*c) == n, "Matmul: output " << c->Describe() << ", expected [" << m << ", " << n << "]");
  Dispatch(a, "Matmul", [&](auto t) {
    using T = decltype(t);
    cpu::Matmul<T>(P<T>(a), ta, P<T>(b), tb, P<T>(c), m, n, k, static_cast<T>(alpha), static_cast<T>(beta));
  });
}

void CopyColumns(const Tensor& src, int64_t begin, Tensor* dst) {
  CheckSameType(src, *dst, "CopyColumns");
  BATON_CHECK(Rows(src) == Rows(*dst) && begin >= 0 && begin + Cols(*dst) <= Cols(src),
              "CopyColumns: " << Cols(*dst) << " columns from " << begin << " of " << src.Describe());
  Dispatch(src, "CopyColumns", [&](auto t) {
    using T = decltype(t);
    cpu::CopyColumns<T>(P<T>(src), Cols(src), begin, P<T>(dst), Rows(src), Cols(*dst));
  });
}

void SetColumns(const Tensor& src, int64_t begin, Tensor* dst) {
  CheckSameType(src, *dst, "SetColumns");
  BATON_CHECK(Rows(src) == Rows(*dst) && begin >= 0 && begin + Cols(src) <= Cols(*dst),
              "SetColumns: " << src.Describe() << " at column " << begin << " of " << dst->Describe());
  Dispatch(src, "SetColumns", [&](auto t) {
    using T = decltype(t);
    cpu::SetColumns<T>(P<T>(src), Cols(src), begin, P<T>(dst), Rows(src), Cols(*dst));
  });
}

void AddBias(const Tensor& bias, Tensor* y) {
  CheckSameType(bias, *y, "AddBias");
  CheckShape(bias, {Cols(*y)}, "AddBias", "bias");
  Dispatch(*y, "AddBias", [&](auto t) { using T = decltype(t); cpu::AddBias<T>(P<T>(bias), P<T>(y), Rows(*y), Cols(*y)); });
}

void BiasGrad(const Tensor& dy, Tensor* grad_bias) {
  CheckSameType(dy, *grad_bias, "BiasGrad");
  CheckShape(*grad_bias, {Cols(dy)}, "BiasGrad", "grad_bias");
  Dispatch(dy, "BiasGrad", [&](auto t) { using T = decltype(t); cpu::BiasGrad<T>(P<T>(dy), P<T>(grad_bias), Rows(dy), Cols(dy)); });
}

void Add(const Tensor& a, const Tensor& b, Tensor* out) {
  CheckSameType(a, b, "Add");
  CheckSameType(a, *out, "Add");
  BATON_CHECK(a.numel() == b.numel() && a.numel() == out->numel(), "Add: " << a.Describe() << " + " << b.Describe() << " -> " << out->Describe());
  Dispatch(a, "Add", [&](auto t) { using T = decltype(t); cpu::Add<T>(P<T>(a), P<T>(b), P<T>(out), a.numel()); });
}

void Axpy(double alpha, const Tensor& src, Tensor* dst) {
  CheckSameType(src, *dst, "Axpy");
  BATON_CHECK(src.numel() == dst->numel(), "Axpy: " << src.Describe() << " into " << dst->Describe());
  Dispatch(src, "Axpy", [&](auto t) { using T = decltype(t); cpu::Axpy<T>(static_cast<T>(alpha), P<T>(src), P<T>(dst), src.numel()); });
}

void EmbeddingForward(const Tensor& ids, const Tensor& table, Tensor* out) {
  BATON_CHECK(ids.dtype() == DType::kI32, "EmbeddingForward: ids must be i32, got " << ids.Describe());
  CheckSameType(table, *out, "EmbeddingForward");
  CheckShape(*out, {ids.numel(), table.dim(1)}, "EmbeddingForward", "out");
  Dispatch(table, "EmbeddingForward", [&](auto t) {
    using T = decltype(t);
    cpu::EmbeddingForward<T>(P<int32_t>(ids), P<T>(table), P<T>(out), ids.numel(), table.dim(1));
  });
}

void EmbeddingBackward(const Tensor& ids, const Tensor& dy, Tensor* grad_table) {
  CheckSameType(dy, *grad_table, "EmbeddingBackward");
  CheckShape(dy, {ids.numel(), grad_table->dim(1)}, "EmbeddingBackward", "dy");
  Dispatch(dy, "EmbeddingBackward", [&](auto t) {
    using T = decltype(t);
    cpu::EmbeddingBackward<T>(P<int32_t>(ids), P<T>(dy), P<T>(grad_table), ids.numel(), dy.dim(1));
  });
}

void AddPositions(const Tensor& positions, int64_t seq_len, Tensor* y) {
  CheckSameType(positions, *y, "AddPositions");
  BATON_CHECK(positions.dim(0) >= seq_len && positions.dim(1) == Cols(*y) && Rows(*y) % seq_len == 0,
              "AddPositions: table " << positions.Describe() << ", seq_len " << seq_len << ", y " << y->Describe());
  Dispatch(*y, "AddPositions", [&](auto t) {
    using T = decltype(t);
    cpu::AddPositions<T>(P<T>(positions), seq_len, P<T>(y), Rows(*y), Cols(*y));
  });
}

void PositionsBackward(const Tensor& dy, int64_t seq_len, Tensor* grad_positions) {
  CheckSameType(dy, *grad_positions, "PositionsBackward");
  BATON_CHECK(grad_positions->dim(0) >= seq_len && grad_positions->dim(1) == Cols(dy) && Rows(dy) % seq_len == 0,
              "PositionsBackward: table " << grad_positions->Describe() << ", dy " << dy.Describe());
  Dispatch(dy, "PositionsBackward", [&](auto t) {
    using T = decltype(t);
    cpu::PositionsBackward<T>(P<T>(dy), seq_len, P<T>(grad_positions), Rows(dy), Cols(dy));
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
  Dispatch(x, "LayerNormForward", [&](auto t) {
    using T = decltype(t);
    cpu::LayerNormForward<T>(P<T>(x), P<T>(gain), P<T>(bias), static_cast<T>(eps), P<T>(y), P<T>(mean), P<T>(rstd), rows, cols);
  });
}

void LayerNormBackward(const Tensor& dy, const Tensor& x, const Tensor& gain, const Tensor& mean, const Tensor& rstd,
                       Tensor* dx, Tensor* grad_gain, Tensor* grad_bias) {
  CheckShape(dy, x.shape(), "LayerNormBackward", "dy");
  CheckShape(*dx, x.shape(), "LayerNormBackward", "dx");
  CheckShape(*grad_gain, gain.shape(), "LayerNormBackward", "grad_gain");
  CheckShape(*grad_bias, gain.shape(), "LayerNormBackward", "grad_bias");
  Dispatch(x, "LayerNormBackward", [&](auto t) {
    using T = decltype(t);
    cpu::LayerNormBackward<T>(P<T>(dy), P<T>(x), P<T>(gain), P<T>(mean), P<T>(rstd), P<T>(dx), P<T>(grad_gain),
                              P<T>(grad_bias), Rows(x), Cols(x));
  });
}

void RmsNormForward(const Tensor& x, const Tensor& gain, double eps, Tensor* y, Tensor* rstd) {
  if (gain.defined()) CheckShape(gain, {Cols(x)}, "RmsNormForward", "gain");
  CheckShape(*y, x.shape(), "RmsNormForward", "y");
  CheckShape(*rstd, {Rows(x)}, "RmsNormForward", "rstd");
  Dispatch(x, "RmsNormForward", [&](auto t) {
    using T = decltype(t);
    cpu::RmsNormForward<T>(P<T>(x), P<T>(gain), static_cast<T>(eps), P<T>(y), P<T>(rstd), Rows(x), Cols(x));
  });
}

void RmsNormBackward(const Tensor& dy, const Tensor& x, const Tensor& gain, const Tensor& rstd, Tensor* dx,
                     Tensor* grad_gain) {
  CheckShape(dy, x.shape(), "RmsNormBackward", "dy");
  CheckShape(*dx, x.shape(), "RmsNormBackward", "dx");
  Dispatch(x, "RmsNormBackward", [&](auto t) {
    using T = decltype(t);
    cpu::RmsNormBackward<T>(P<T>(dy), P<T>(x), P<T>(gain), P<T>(rstd), P<T>(dx), P<T>(grad_gain), Rows(x), Cols(x));
  });
}

void GeluForward(const Tensor& x, Tensor* y) {
  CheckSameType(x, *y, "GeluForward");
  CheckShape(*y, x.shape(), "GeluForward", "y");
  Dispatch(x, "GeluForward", [&](auto t) { using T = decltype(t); cpu::GeluForward<T>(P<T>(x), P<T>(y), x.numel()); });
}

void GeluBackward(const Tensor& dy, const Tensor& x, Tensor* dx) {
  CheckShape(dy, x.shape(), "GeluBackward", "dy");
  CheckShape(*dx, x.shape(), "GeluBackward", "dx");
  Dispatch(x, "GeluBackward", [&](auto t) { using T = decltype(t); cpu::GeluBackward<T>(P<T>(dy), P<T>(x), P<T>(dx), x.numel()); });
}

void Rope(Tensor* x, int64_t seq_len, int64_t heads, RopeStyle style, double base, bool inverse) {
  const int64_t rows = Rows(*x), cols = Cols(*x);
  BATON_CHECK(cols % heads == 0 && (cols / heads) % 2 == 0 && rows % seq_len == 0,
              "Rope: " << x->Describe() << " with " << heads << " heads (head size must be even), seq_len " << seq_len);
  Dispatch(*x, "Rope", [&](auto t) {
    using T = decltype(t);
    cpu::Rope<T>(P<T>(x), rows, seq_len, heads, cols / heads, style == RopeStyle::kInterleaved, base, inverse);
  });
}

void CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, int64_t seq_len, int64_t heads,
                            Tensor* out, Tensor* probs) {
  const int64_t rows = Rows(q), cols = Cols(q), batch = rows / seq_len;
  BATON_CHECK(rows % seq_len == 0 && cols % heads == 0, "CausalAttentionForward: " << q.Describe() << ", seq_len "
                                                                                     << seq_len << ", heads " << heads);
  CheckShape(k, q.shape(), "CausalAttentionForward", "k");
  CheckShape(v, q.shape(), "CausalAttentionForward", "v");
  CheckShape(*out, q.shape(), "CausalAttentionForward", "out");
  CheckShape(*probs, {batch, heads, seq_len, seq_len}, "CausalAttentionForward", "probs");
  Dispatch(q, "CausalAttentionForward", [&](auto t) {
    using T = decltype(t);
    cpu::CausalAttentionForward<T>(P<T>(q), P<T>(k), P<T>(v), P<T>(out), P<T>(probs), batch, seq_len, heads, cols / heads);
  });
}

void CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                             int64_t seq_len, int64_t heads, Tensor* dq, Tensor* dk, Tensor* dv) {
  const int64_t rows = Rows(q), cols = Cols(q), batch = rows / seq_len;
  CheckShape(dout, q.shape(), "CausalAttentionBackward", "dout");
  CheckShape(probs, {batch, heads, seq_len, seq_len}, "CausalAttentionBackward", "probs");
  for (Tensor* g : {dq, dk, dv}) CheckShape(*g, q.shape(), "CausalAttentionBackward", "gradient");
  Dispatch(q, "CausalAttentionBackward", [&](auto t) {
    using T = decltype(t);
    cpu::CausalAttentionBackward<T>(P<T>(dout), P<T>(q), P<T>(k), P<T>(v), P<T>(probs), P<T>(dq), P<T>(dk), P<T>(dv),
                                    batch, seq_len, heads, cols / heads);
  });
}

void SoftmaxCrossEntropy(const Tensor& logits, const Tensor& targets, int64_t vocab, Tensor* losses, Tensor* dlogits,
                         double grad_scale) {
  const int64_t rows = Rows(logits), padded = Cols(logits);
  BATON_CHECK(targets.dtype() == DType::kI32 && targets.numel() == rows,
              "SoftmaxCrossEntropy: targets " << targets.Describe() << " for logits " << logits.Describe());
  BATON_CHECK(vocab <= padded, "SoftmaxCrossEntropy: vocab " << vocab << " > logits width " << padded);
  CheckShape(*losses, {rows}, "SoftmaxCrossEntropy", "losses");
  if (dlogits) CheckShape(*dlogits, logits.shape(), "SoftmaxCrossEntropy", "dlogits");
  Dispatch(logits, "SoftmaxCrossEntropy", [&](auto t) {
    using T = decltype(t);
    cpu::SoftmaxCrossEntropy<T>(P<T>(logits), P<int32_t>(targets), rows, padded, vocab, P<T>(losses), P<T>(dlogits),
                                static_cast<T>(grad_scale));
  });
}

}  // namespace baton::ops
