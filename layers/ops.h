// The ops every layer is written in. Each op takes tensors and dispatches on
// their device and dtype to a backend kernel (layers/cpu/ now, layers/cuda/
// with the CUDA backend), so layer modules, the pipeline and checkpoints never
// branch on the backend. Shapes are checked here, once, for every backend.
//
// Conventions: activations are row-major [rows, features] (rows = batch x
// sequence); linear weights are [out, in] (y = x W^T + b). Ops that produce a
// parameter gradient accumulate into it (+=); all others overwrite `out`.
#pragma once

#include <string>

#include "runtime/tensor.h"

namespace baton::ops {

// What the backend runs with, for the run log: e.g. "CPU (fp32), 2 OpenMP threads, OpenBLAS
// with 2 threads". On the CPU, results are bitwise reproducible for a given thread count;
// OpenBLAS may sum in another order with another count.
std::string BackendDescription();
// Sets the CPU backend's thread count (OpenMP and OpenBLAS); n <= 0 keeps their defaults.
void SetBackendThreads(int n);

// c = alpha * op(a) op(b) + beta * c, op = transpose when the flag is set.
// a and b are viewed as 2-D (leading dimensions folded into rows).
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
// Rotates each head of x ([rows, heads * head_dim], row r at position r % seq_len) in place
// by angle m * theta_i, theta_i = base^(-2i/head_dim). inverse=true rotates by the negative
// angle, which is the backward of the rotation (it is orthogonal).
void Rope(Tensor* x, int64_t seq_len, int64_t heads, RopeStyle style, double base, bool inverse);

// Multi-head scaled dot-product attention with a causal mask. q, k, v, out: [batch * seq, heads * head_dim];
// probs: [batch, heads, seq, seq] softmax probabilities (saved for backward).
void CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, int64_t seq_len, int64_t heads,
                            Tensor* out, Tensor* probs);
void CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& probs, int64_t seq_len, int64_t heads, Tensor* dq, Tensor* dk,
                             Tensor* dv);

// Softmax cross-entropy over the first `vocab` columns of logits [rows, padded_vocab]; padded
// columns never enter the loss and get zero gradient. losses[r] = -log p(targets[r]). When
// dlogits is non-null it receives grad_scale * (softmax - onehot).
void SoftmaxCrossEntropy(const Tensor& logits, const Tensor& targets, int64_t vocab, Tensor* losses,
                         Tensor* dlogits, double grad_scale);

}  // namespace baton::ops
