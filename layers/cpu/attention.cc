// Multi-head attention under the prefix/padding mask of ops::AttentionForward,
// the reference version: every sum accumulates in double, and nothing of size
// [seq, seq] is kept: the backward recomputes each probability from q, k and
// the saved log-sum-exp, as the fused GPU kernels do. Each (batch, head) is
// independent and writes its own rows, so they run in parallel and the results
// are bitwise the same for any thread count.
//
// q, k and v are read in place from the packed qkv [batch * seq, 3 * hidden]
// (columns 0, hidden and 2 hidden), and dq, dk, dv written in place into d_qkv.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "layers/cpu/kernels.h"

namespace baton::cpu {
namespace {
// Row i of head h in sequence b of a [batch * seq, *] matrix with rows `stride` apart,
// the heads starting at `base`.
template <typename T>
inline T* Row(T* base, int64_t stride, int64_t b, int64_t i, int64_t h, int64_t seq, int64_t head_dim) {
  return base + (b * seq + i) * stride + h * head_dim;
}

// The mask of one example: key j is visible from query i iff j < len && (j <= i || j < pre).
struct ExampleMask {
  int64_t len, pre;
  ExampleMask(int64_t b, int64_t seq, int64_t prefix, const int32_t* prefix_lengths, const int32_t* lengths)
      : len(lengths ? std::clamp<int64_t>(lengths[b], 0, seq) : seq),
        pre(std::clamp<int64_t>(prefix_lengths ? prefix_lengths[b] : prefix, 0, seq)) {}
  bool Visible(int64_t i, int64_t j) const { return j < len && (j <= i || j < pre); }
};

template <typename T>
double DotD(const T* a, const T* b, int64_t n) {
  double s = 0;
  for (int64_t d = 0; d < n; ++d) s += static_cast<double>(a[d]) * static_cast<double>(b[d]);
  return s;
}
}  // namespace

template <typename T>
void AttentionForward(const T* qkv, T* out, T* lse, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
                      int64_t prefix, const int32_t* prefix_lengths, const int32_t* lengths) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const int64_t hidden = heads * head_dim, stride = 3 * hidden;
  const T *q = qkv, *k = qkv + hidden, *v = qkv + 2 * hidden;
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < batch * heads; ++bh) {
    const int64_t b = bh / heads, h = bh % heads;
    const ExampleMask mask(b, seq, prefix, prefix_lengths, lengths);
    std::vector<double> s(seq), o(head_dim);
    for (int64_t i = 0; i < seq; ++i) {
      const T* qi = Row(q, stride, b, i, h, seq, head_dim);
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < seq; ++j) {
        if (!mask.Visible(i, j)) continue;
        s[j] = scale * DotD(qi, Row(k, stride, b, j, h, seq, head_dim), head_dim);
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      std::fill(o.begin(), o.end(), 0.0);
      for (int64_t j = 0; j < seq; ++j) {
        if (!mask.Visible(i, j)) continue;
        const double e = std::exp(s[j] - mx);
        sum += e;
        const T* vj = Row(v, stride, b, j, h, seq, head_dim);
        for (int64_t d = 0; d < head_dim; ++d) o[d] += e * static_cast<double>(vj[d]);
      }
      // A row that sees no key (length 0, which callers never pass) gets 0 and lse -inf.
      T* oi = Row(out, hidden, b, i, h, seq, head_dim);
      for (int64_t d = 0; d < head_dim; ++d) oi[d] = static_cast<T>(sum > 0 ? o[d] / sum : 0.0);
      lse[bh * seq + i] = static_cast<T>(sum > 0 ? mx + std::log(sum) : -std::numeric_limits<double>::infinity());
    }
  }
}

// P = exp(scale q.k - lse), D_i = dout_i . out_i, dV = P^T dout, dP = dout V^T,
// dS = P (dP - D), dQ = scale dS K, dK = scale dS^T Q.
template <typename T>
void AttentionBackward(const T* dout, const T* qkv, const T* out, const T* lse, T* d_qkv, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, int64_t prefix, const int32_t* prefix_lengths,
                       const int32_t* lengths) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const int64_t hidden = heads * head_dim, stride = 3 * hidden;
  const T *q = qkv, *k = qkv + hidden, *v = qkv + 2 * hidden;
  T *dq = d_qkv, *dk = d_qkv + hidden, *dv = d_qkv + 2 * hidden;
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < batch * heads; ++bh) {
    const int64_t b = bh / heads, h = bh % heads;
    const ExampleMask mask(b, seq, prefix, prefix_lengths, lengths);
    std::vector<double> dk_acc(seq * head_dim, 0.0), dv_acc(seq * head_dim, 0.0), dq_acc(head_dim);
    for (int64_t i = 0; i < seq; ++i) {
      const T* qi = Row(q, stride, b, i, h, seq, head_dim);
      const T* doi = Row(dout, hidden, b, i, h, seq, head_dim);
      const double delta = DotD(doi, Row(out, hidden, b, i, h, seq, head_dim), head_dim);
      const double lse_i = lse[bh * seq + i];
      std::fill(dq_acc.begin(), dq_acc.end(), 0.0);
      for (int64_t j = 0; j < seq; ++j) {
        if (!mask.Visible(i, j)) continue;
        const T* kj = Row(k, stride, b, j, h, seq, head_dim);
        const T* vj = Row(v, stride, b, j, h, seq, head_dim);
        const double p = std::exp(scale * DotD(qi, kj, head_dim) - lse_i);
        const double ds = p * (DotD(doi, vj, head_dim) - delta);
        double* dkj = &dk_acc[j * head_dim];
        double* dvj = &dv_acc[j * head_dim];
        for (int64_t d = 0; d < head_dim; ++d) {
          dq_acc[d] += ds * static_cast<double>(kj[d]);
          dkj[d] += ds * static_cast<double>(qi[d]);
          dvj[d] += p * static_cast<double>(doi[d]);
        }
      }
      T* dqi = Row(dq, stride, b, i, h, seq, head_dim);
      for (int64_t d = 0; d < head_dim; ++d) dqi[d] = static_cast<T>(scale * dq_acc[d]);
    }
    for (int64_t j = 0; j < seq; ++j) {
      T* dkj = Row(dk, stride, b, j, h, seq, head_dim);
      T* dvj = Row(dv, stride, b, j, h, seq, head_dim);
      for (int64_t d = 0; d < head_dim; ++d) {
        dkj[d] = static_cast<T>(scale * dk_acc[j * head_dim + d]);
        dvj[d] = static_cast<T>(dv_acc[j * head_dim + d]);
      }
    }
  }
}

#define BATON_INSTANTIATE(T)                                                                                        \
  template void AttentionForward<T>(const T*, T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t, const int32_t*, \
                                    const int32_t*);                                                                \
  template void AttentionBackward<T>(const T*, const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, \
                                     int64_t, const int32_t*, const int32_t*);
BATON_INSTANTIATE(float)
BATON_INSTANTIATE(double)
#undef BATON_INSTANTIATE

}  // namespace baton::cpu
