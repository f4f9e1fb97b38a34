// CPU reference kernels (fp32, and fp64 for gradient checks), one op per file.
// Raw pointers and sizes: the dispatch in layers/ops.cc has already checked
// shapes and dtypes. Loops are parallelised only over independent rows, so
// every result is bitwise reproducible whatever the thread count.
#pragma once

#include <cstdint>

namespace baton::cpu {

template <typename T>
void Matmul(const T* a, bool ta, const T* b, bool tb, T* c, int64_t m, int64_t n, int64_t k, T alpha, T beta);

template <typename T>
void CopyColumns(const T* src, int64_t src_cols, int64_t begin, T* dst, int64_t rows, int64_t dst_cols);
template <typename T>
void SetColumns(const T* src, int64_t src_cols, int64_t begin, T* dst, int64_t rows, int64_t dst_cols);
template <typename T> void AddBias(const T* bias, T* y, int64_t rows, int64_t cols);
template <typename T> void BiasGrad(const T* dy, T* grad_bias, int64_t rows, int64_t cols);
template <typename T> void Add(const T* a, const T* b, T* out, int64_t n);
template <typename T> void Axpy(T alpha, const T* src, T* dst, int64_t n);

template <typename T>
void EmbeddingForward(const int32_t* ids, const T* table, T* out, int64_t rows, int64_t cols);
template <typename T>
void EmbeddingBackward(const int32_t* ids, const T* dy, T* grad_table, int64_t rows, int64_t cols);
template <typename T>
void AddPositions(const T* positions, int64_t seq_len, T* y, int64_t rows, int64_t cols);
template <typename T>
void PositionsBackward(const T* dy, int64_t seq_len, T* grad_positions, int64_t rows, int64_t cols);

template <typename T>
void LayerNormForward(const T* x, const T* gain, const T* bias, T eps, T* y, T* mean, T* rstd, int64_t rows,
                      int64_t cols);
template <typename T>
void LayerNormBackward(const T* dy, const T* x, const T* gain, const T* mean, const T* rstd, T* dx, T* grad_gain,
                       T* grad_bias, int64_t rows, int64_t cols);
template <typename T>
void RmsNormForward(const T* x, const T* gain, T eps, T* y, T* rstd, int64_t rows, int64_t cols);
template <typename T>
void RmsNormBackward(const T* dy, const T* x, const T* gain, const T* rstd, T* dx, T* grad_gain, int64_t rows,
                     int64_t cols);

template <typename T> void GeluForward(const T* x, T* y, int64_t n);
template <typename T> void GeluBackward(const T* dy, const T* x, T* dx, int64_t n);

// Rotates heads * head_dim elements of each of `rows` rows (row r at x + r * row_stride,
// at position r % seq_len); see ops::Rope.
template <typename T>
void Rope(T* x, int64_t rows, int64_t row_stride, int64_t seq_len, int64_t heads, int64_t head_dim, bool interleaved,
          double base, bool inverse);

// See ops::AttentionForward. qkv, d_qkv: [batch * seq, 3 * heads * head_dim] (q | k | v);
// out, dout: [batch * seq, heads * head_dim]. prefix_lengths / lengths may be null.
template <typename T>
void AttentionForward(const T* qkv, T* out, T* lse, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
                      int64_t prefix, const int32_t* prefix_lengths, const int32_t* lengths);
template <typename T>
void AttentionBackward(const T* dout, const T* qkv, const T* out, const T* lse, T* d_qkv, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, int64_t prefix, const int32_t* prefix_lengths,
                       const int32_t* lengths);

template <typename T>
void SoftmaxCrossEntropy(const T* logits, const int32_t* targets, int64_t rows, int64_t padded_vocab, int64_t vocab,
                         T* losses, T* dlogits, T grad_scale);

}  // namespace baton::cpu
