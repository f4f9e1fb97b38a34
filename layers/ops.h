// The ops every layer is written in. Each op takes tensors and dispatches on
// their device and dtype to a backend kernel (layers/cpu/ now, layers/cuda/
// with the CUDA backend), so layer modules, the pipeline and checkpoints never
// branch on the backend. Shapes are checked here, once, for every backend.
//
// Conventions: activations are row-major [rows, features] (rows = batch x
// sequence); linear weights are [out, in] (y = x W^T + b). Ops that produce a
// parameter gradient accumulate into it (+=); all others overwrite `out`.
//
// Types: each op has a compute type (that of its activations: f32 or f64 on
// the CPU, bf16 on the GPU) and an accumulation type, AccumulationType(compute)
// (f32 for f32 and bf16, f64 for f64), which parameter gradients, norm
// statistics, per-token losses and attention log-sum-exps use. On the CPU the
// two are the same, so the reference computes everything in one type.
#pragma once

#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace baton::ops {

// f64 for f64, else f32: the type gradients and statistics accumulate in.
DType AccumulationType(DType compute);

// What the backend runs with, for the run log: e.g. "CPU (fp32), 2 OpenMP threads, OpenBLAS
// with 2 threads". On the CPU, results are bitwise reproducible for a given thread count;
// OpenBLAS may sum in another order with another count.
std::string BackendDescription();
// Sets the CPU backend's thread count (OpenMP and OpenBLAS); n <= 0 keeps their defaults.
void SetBackendThreads(int n);

// dst = src converted to dst's dtype (same shape and device): f32/f64/bf16 in any
// direction; to bf16 rounds to nearest even.
void Convert(const Tensor& src, Tensor* dst);
// A new tensor: src converted to `dtype` (a copy when it already has it).
Tensor Cast(const Tensor& src, DType dtype);

// c = alpha * op(a) op(b) + beta * c, op = transpose when the flag is set.
// a and b are viewed as 2-D (leading dimensions folded into rows). c has a's
// type or its accumulation type (weight gradients accumulate in fp32).
void Matmul(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor* c,
            double alpha = 1.0, double beta = 0.0);

// dst[r, :] = src[r, begin : begin + dst.cols]  (e.g. q, k, v out of a fused qkv)
void CopyColumns(const Tensor& src, int64_t begin, Tensor* dst);
// dst[r, begin : begin + src.cols] = src[r, :]  (the backward of CopyColumns)
void SetColumns(const Tensor& src, int64_t begin, Tensor* dst);

// y[r, :] += bias
void AddBias(const Tensor& bias, Tensor* y);
// grad_bias += sum over rows of dy
void BiasGrad(const Tensor& dy, Tensor* grad_bias);
// out = a + b (out may alias a or b)
void Add(const Tensor& a, const Tensor& b, Tensor* out);
// dst += alpha * src
void Axpy(double alpha, const Tensor& src, Tensor* dst);
// x *= factor
void Scale(double factor, Tensor* x);
// Sum of all elements (f32 or f64), in a fixed order; returns to the host.
double Sum(const Tensor& x);
// Sum of squares of each tensor, each in a fixed order (one host synchronisation).
std::vector<double> SumsOfSquares(const std::vector<const Tensor*>& tensors);

// out[r, :] = table[ids[r], :]
void EmbeddingForward(const Tensor& ids, const Tensor& table, Tensor* out);
// grad_table[ids[r], :] += dy[r, :]  (rows in order, so the sum is deterministic)
void EmbeddingBackward(const Tensor& ids, const Tensor& dy, Tensor* grad_table);
// y[r, :] += positions[r % seq_len, :]
void AddPositions(const Tensor& positions, int64_t seq_len, Tensor* y);
// grad_positions[p, :] += sum over rows r with r % seq_len == p of dy[r, :]
void PositionsBackward(const Tensor& dy, int64_t seq_len, Tensor* grad_positions);

// LayerNorm over the last dimension; saves mean and rstd ([rows]) for backward.
void LayerNormForward(const Tensor& x, const Tensor& gain, const Tensor& bias, double eps, Tensor* y,
                      Tensor* mean, Tensor* rstd);
// dx = d/dx; grad_gain, grad_bias accumulate.
void LayerNormBackward(const Tensor& dy, const Tensor& x, const Tensor& gain, const Tensor& mean,
                       const Tensor& rstd, Tensor* dx, Tensor* grad_gain, Tensor* grad_bias);
// RMSNorm: y = x / sqrt(mean(x^2) + eps) * gain; an undefined gain means parameter-free.
void RmsNormForward(const Tensor& x, const Tensor& gain, double eps, Tensor* y, Tensor* rstd);
void RmsNormBackward(const Tensor& dy, const Tensor& x, const Tensor& gain, const Tensor& rstd, Tensor* dx,
                     Tensor* grad_gain);

// tanh-approximated GELU.
void GeluForward(const Tensor& x, Tensor* y);
void GeluBackward(const Tensor& dy, const Tensor& x, Tensor* dx);

enum class RopeStyle { kInterleaved, kHalfSplit };
// Rotates, in place, columns [first_column, first_column + columns) of every row of x
// ([rows, cols], row r at position m = r % seq_len), seen as columns / head_dim heads of
// head_dim: pair i of each head by angle m * theta_i, theta_i = base^(-2i/head_dim). The
// other columns are untouched, so q and k of a packed qkv ([rows, 3 hidden]) rotate in
// one call: first_column 0, columns 2 hidden. inverse=true rotates by the negative angle,
// which is the backward of the rotation (it is orthogonal).
void Rope(Tensor* x, int64_t first_column, int64_t columns, int64_t seq_len, int64_t head_dim, RopeStyle style,
          double base, bool inverse);

// Which keys query i of example b sees: key j is visible when
//   j < length(b)  and  (j <= i  or  j < prefix(b)).
// prefix 0 is causal (GPT), prefix >= seq is bidirectional (BERT, RoFormer), a
// source length is UniLM's seq2seq mask. length(b) excludes padding keys.
// prefix_lengths / lengths are optional i32 [batch] tensors on the q's device;
// when undefined, `prefix` applies to every example and nothing is padding.
struct AttentionMask {
  int64_t prefix = 0;
  Tensor prefix_lengths;
  Tensor lengths;
  static AttentionMask Causal() { return {}; }
};

// Multi-head scaled dot-product attention, flash-style: the [seq, seq] scores
// are never stored. qkv: [batch * seq, 3 * hidden], hidden = heads * head_dim,
// the fused projection's output read in place: q = columns [0, hidden), k =
// [hidden, 2 hidden), v = [2 hidden, 3 hidden), head h at [h d, (h+1) d) of
// each. out: [batch * seq, hidden]; lse: [batch, heads, seq] (accumulation
// type), the log-sum-exp of each query's scaled scores, which is all the
// backward needs besides qkv and out.
void AttentionForward(const Tensor& qkv, int64_t seq_len, int64_t heads, const AttentionMask& mask, Tensor* out,
                      Tensor* lse);
// d_qkv: [batch * seq, 3 * hidden], laid out like qkv (dq | dk | dv); every element is overwritten.
void AttentionBackward(const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse, int64_t seq_len,
                       int64_t heads, const AttentionMask& mask, Tensor* d_qkv);

// Softmax cross-entropy over the first `vocab` columns of logits [rows, padded_vocab]; padded
// columns never enter the loss and get zero gradient. losses[r] = -log p(targets[r]). When
// dlogits is non-null it receives grad_scale * (softmax - onehot). A row whose target is
// negative (kIgnoreTarget) is outside the loss: losses[r] = 0 and its dlogits row is 0.
void SoftmaxCrossEntropy(const Tensor& logits, const Tensor& targets, int64_t vocab, Tensor* losses,
                         Tensor* dlogits, double grad_scale);

// ---- Fused ops: one op for a sequence of the ops above, to save passes over memory on the
// GPU. On the CPU each runs exactly that sequence of kernels (the same bits). On the GPU:
//   LinearForward            the bias is added to the fp32 product before its one rounding
//                            (the sequence rounds twice);
//   LinearBackwardInputGelu  the product dy W is not rounded before gelu'(f) multiplies it;
//   Add{Layer,Rms}NormForward  the same bits as the sequence;
//   {LayerNorm,RmsNorm}BackwardAdd  the residual is added to dx in fp32, one rounding.

// y = x W^T + bias, W [out, in], bias [out] or undefined: Matmul(x, W^T), then AddBias.
void LinearForward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor* y);
// d_f = (dy W) * gelu'(f) (tanh GELU), the input gradient of a linear layer whose input was
// gelu(f): Matmul(dy, W), then GeluBackward with f. d_f must not alias f or dy.
void LinearBackwardInputGelu(const Tensor& dy, const Tensor& w, const Tensor& f, Tensor* d_f);
// sum = a + b, then LayerNormForward(sum) (statistics of the sum as stored). sum may alias a
// or b; y must not alias sum.
void AddLayerNormForward(const Tensor& a, const Tensor& b, const Tensor& gain, const Tensor& bias, double eps,
                         Tensor* sum, Tensor* y, Tensor* mean, Tensor* rstd);
void AddRmsNormForward(const Tensor& a, const Tensor& b, const Tensor& gain, double eps, Tensor* sum, Tensor* y,
                       Tensor* rstd);
// dx = LayerNormBackward(dy, ...) + residual (a residual stream's gradient): LayerNormBackward,
// then Add. dx must not alias dy, x or residual.
void LayerNormBackwardAdd(const Tensor& dy, const Tensor& x, const Tensor& gain, const Tensor& mean,
                          const Tensor& rstd, const Tensor& residual, Tensor* dx, Tensor* grad_gain,
                          Tensor* grad_bias);
void RmsNormBackwardAdd(const Tensor& dy, const Tensor& x, const Tensor& gain, const Tensor& rstd,
                        const Tensor& residual, Tensor* dx, Tensor* grad_gain);

}  // namespace baton::ops
