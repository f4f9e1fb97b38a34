// CUDA kernels behind layers/ops.h, one op per file in layers/cuda/. Plain C++
// declarations (no CUDA types), so ops.cc compiles in every build; the
// definitions exist only when BATON_CUDA=ON.
//
// Every kernel is enqueued on runtime's compute stream (cuda::ComputeStream())
// and returns without waiting, except those that return a host value. Shapes
// and dtypes have been checked by layers/ops.cc.
//
// Types: activations and the working copies of weights are bf16 (`Bf16*`,
// the bit pattern of __nv_bfloat16); what accumulates (parameter gradients,
// norm statistics, per-token losses, log-sum-exp) is fp32. Arithmetic is fp32.
//
// Determinism: no kernel here uses floating-point atomics. Reductions run in
// a fixed order that depends only on the shapes, so two runs on the same GPU
// with the same inputs give the same bits.
#pragma once

#include <cstdint>

#include "runtime/dtype.h"

namespace baton::cuda {

using Bf16 = uint16_t;  // storage of a bf16 value; kernels reinterpret it as __nv_bfloat16

// c = alpha * op(a) op(b) + beta * c through cuBLASLt, row-major like cpu::Matmul.
// a, b: bf16 or f32 (both the same); c: bf16 or f32. fp32 accumulation; no TF32.
void Matmul(const void* a, bool ta, const void* b, bool tb, void* c, DType ab_type, DType c_type, int64_t m,
            int64_t n, int64_t k, float alpha, float beta);

// Any element size (bytes per element = elem_bytes).
void CopyColumns(const void* src, int64_t src_cols, int64_t begin, void* dst, int64_t rows, int64_t dst_cols,
                 int elem_bytes);
void SetColumns(const void* src, int64_t src_cols, int64_t begin, void* dst, int64_t rows, int64_t dst_cols,
                int elem_bytes);

void AddBias(const Bf16* bias, Bf16* y, int64_t rows, int64_t cols);
void BiasGrad(const Bf16* dy, float* grad_bias, int64_t rows, int64_t cols);  // +=
// out = a + b, elementwise, for dtype bf16 or f32 (out may alias a or b).
void Add(const void* a, const void* b, void* out, int64_t n, DType dtype);
// dst += alpha * src (f32).
void Axpy(float alpha, const float* src, float* dst, int64_t n);
// x *= factor (f32).
void Scale(float* x, int64_t n, float factor);
// dst = src converted: f32 -> bf16 (round to nearest even), bf16 -> f32, or same-type copy.
void Convert(const void* src, DType src_type, void* dst, DType dst_type, int64_t n);

void EmbeddingForward(const int32_t* ids, const Bf16* table, Bf16* out, int64_t rows, int64_t cols);
// grad_table[ids[r]] += dy[r], summed per id in row order (deterministic; ids sorted stably on the GPU).
void EmbeddingBackward(const int32_t* ids, const Bf16* dy, float* grad_table, int64_t rows, int64_t cols);
void AddPositions(const Bf16* positions, int64_t seq_len, Bf16* y, int64_t rows, int64_t cols);
void PositionsBackward(const Bf16* dy, int64_t seq_len, float* grad_positions, int64_t rows, int64_t cols);  // +=

void LayerNormForward(const Bf16* x, const Bf16* gain, const Bf16* bias, float eps, Bf16* y, float* mean,
                      float* rstd, int64_t rows, int64_t cols);
void LayerNormBackward(const Bf16* dy, const Bf16* x, const Bf16* gain, const float* mean, const float* rstd,
                       Bf16* dx, float* grad_gain, float* grad_bias, int64_t rows, int64_t cols);  // grads +=
// gain may be null (parameter-free RMS norm); then grad_gain is null too.
void RmsNormForward(const Bf16* x, const Bf16* gain, float eps, Bf16* y, float* rstd, int64_t rows, int64_t cols);
void RmsNormBackward(const Bf16* dy, const Bf16* x, const Bf16* gain, const float* rstd, Bf16* dx,
                     float* grad_gain, int64_t rows, int64_t cols);

void GeluForward(const Bf16* x, Bf16* y, int64_t n);
void GeluBackward(const Bf16* dy, const Bf16* x, Bf16* dx, int64_t n);

// In place on heads * head_dim elements of each of `rows` rows, row r at x + r * row_stride
// (position r % seq_len); see ops::Rope.
void Rope(Bf16* x, int64_t rows, int64_t row_stride, int64_t seq_len, int64_t heads, int64_t head_dim,
          bool interleaved, double base, bool inverse);

// Fused (flash-style) attention; see ops::AttentionForward for the layout and the mask.
// qkv, d_qkv: [batch * seq, 3 * heads * head_dim] (q | k | v, read and written in place);
// out, dout: [batch * seq, heads * head_dim]; lse: f32 [batch, heads, seq]. Every bf16
// pointer must be 16-byte aligned (aborts otherwise). prefix_lengths / lengths: device
// i32 [batch] or null (then `prefix` for all, and no padding).
void AttentionForward(const Bf16* qkv, Bf16* out, float* lse, int64_t batch, int64_t seq, int64_t heads,
                      int64_t head_dim, int64_t prefix, const int32_t* prefix_lengths, const int32_t* lengths);
void AttentionBackward(const Bf16* dout, const Bf16* qkv, const Bf16* out, const float* lse, Bf16* d_qkv,
                       int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, int64_t prefix,
                       const int32_t* prefix_lengths, const int32_t* lengths);

// losses[r] (f32) = -log softmax(logits[r, :vocab])[targets[r]]; when dlogits is non-null (it may alias
// logits) it receives grad_scale * (softmax - onehot) in bf16, and zero in the padded columns.
void SoftmaxCrossEntropy(const Bf16* logits, const int32_t* targets, int64_t rows, int64_t padded_vocab,
                         int64_t vocab, float* losses, Bf16* dlogits, float grad_scale);

// Sums of squares of several f32 or bf16 arrays, each reduced in a fixed order; one host
// synchronisation for all of them.
struct ArrayRef {
  const void* data;
  int64_t n;
  DType dtype;  // kF32 or kBF16
};
void SumsOfSquares(const ArrayRef* arrays, int count, double* out_host);
// Sum of an f32 array, in a fixed order; synchronises.
double Sum(const float* x, int64_t n);

// ---- Fused ops (see ops.h): one pass over memory where the unfused sequence makes two.
// cuBLASLt epilogues (matmul.cc), falling back to the unfused kernels where one does not apply.
// y[m, n] = x[m, k] w[n, k]^T + bias[n]; bias may be null. The bias is added in fp32 before the
// one rounding to bf16.
void LinearForward(const Bf16* x, const Bf16* w, const Bf16* bias, Bf16* y, int64_t m, int64_t n, int64_t k);
// d_f[m, n] = (dy[m, k] w[k, n]) * gelu'(f[m, n]), tanh GELU; the product is not rounded before the
// multiplication. d_f must not alias f.
void LinearBackwardInputGelu(const Bf16* dy, const Bf16* w, const Bf16* f, Bf16* d_f, int64_t m, int64_t n,
                             int64_t k);
// sum = bf16(a + b); y, mean, rstd = LayerNormForward(sum): the same bits as Add then
// LayerNormForward. sum may alias a or b.
void AddLayerNormForward(const Bf16* a, const Bf16* b, const Bf16* gain, const Bf16* bias, float eps, Bf16* sum,
                         Bf16* y, float* mean, float* rstd, int64_t rows, int64_t cols);
// dx = bf16(LayerNorm dx in fp32 + residual) (one rounding); grads += as LayerNormBackward. dx may
// alias dy, x or residual.
void LayerNormBackwardAdd(const Bf16* dy, const Bf16* x, const Bf16* gain, const float* mean, const float* rstd,
                          const Bf16* residual, Bf16* dx, float* grad_gain, float* grad_bias, int64_t rows,
                          int64_t cols);
// RMSNorm analogues (gain may be null, then grad_gain is null too).
void AddRmsNormForward(const Bf16* a, const Bf16* b, const Bf16* gain, float eps, Bf16* sum, Bf16* y, float* rstd,
                       int64_t rows, int64_t cols);
void RmsNormBackwardAdd(const Bf16* dy, const Bf16* x, const Bf16* gain, const float* rstd, const Bf16* residual,
                        Bf16* dx, float* grad_gain, int64_t rows, int64_t cols);

}  // namespace baton::cuda
