// Causal multi-head attention, the reference version: the [seq, seq]
// probabilities of every (batch, head) are materialised and saved for backward.
// Each (batch, head) is independent, so they run in parallel deterministically.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "layers/cpu/kernels.h"

namespace baton::cpu {
namespace {
// Row i of head h in sequence b of a [batch * seq, heads * head_dim] tensor.
template <typename T>
inline T* Row(T* base, int64_t b, int64_t i, int64_t h, int64_t seq, int64_t heads, int64_t head_dim) {
  return base + ((b * seq + i) * heads + h) * head_dim;
}
}  // namespace

template <typename T>
void CausalAttentionForward(const T* q, const T* k, const T* v, T* out, T* probs, int64_t batch, int64_t seq,
                            int64_t heads, int64_t head_dim) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < batch * heads; ++bh) {
    const int64_t b = bh / heads, h = bh % heads;
    T* p = probs + bh * seq * seq;
    for (int64_t i = 0; i < seq; ++i) {
      const T* qi = Row(q, b, i, h, seq, heads, head_dim);
      T* pi = p + i * seq;
      double mx = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        const T* kj = Row(k, b, j, h, seq, heads, head_dim);
        double s = 0;
        for (int64_t d = 0; d < head_dim; ++d) s += static_cast<double>(qi[d]) * kj[d];
        pi[j] = static_cast<T>(s * scale);
        mx = std::max(mx, static_cast<double>(pi[j]));
      }
      double sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double e = std::exp(pi[j] - mx);
        pi[j] = static_cast<T>(e);
        sum += e;
      }
      for (int64_t j = 0; j <= i; ++j) pi[j] = static_cast<T>(pi[j] / sum);
      for (int64_t j = i + 1; j < seq; ++j) pi[j] = T(0);
      T* oi = Row(out, b, i, h, seq, heads, head_dim);
      for (int64_t d = 0; d < head_dim; ++d) oi[d] = T(0);
      for (int64_t j = 0; j <= i; ++j) {
        const T* vj = Row(v, b, j, h, seq, heads, head_dim);
        for (int64_t d = 0; d < head_dim; ++d) oi[d] += pi[j] * vj[d];
      }
    }
  }
}

template <typename T>
void CausalAttentionBackward(const T* dout, const T* q, const T* k, const T* v, const T* probs, T* dq, T* dk, T* dv,
                             int64_t batch, int64_t seq, int64_t heads, int64_t head_dim) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < batch * heads; ++bh) {
    const int64_t b = bh / heads, h = bh % heads;
    const T* p = probs + bh * seq * seq;
    for (int64_t i = 0; i < seq; ++i) {
      std::memset(Row(dq, b, i, h, seq, heads, head_dim), 0, head_dim * sizeof(T));
      std::memset(Row(dk, b, i, h, seq, heads, head_dim), 0, head_dim * sizeof(T));
      std::memset(Row(dv, b, i, h, seq, heads, head_dim), 0, head_dim * sizeof(T));
    }
    std::vector<double> dp(seq);
    for (int64_t i = 0; i < seq; ++i) {
      const T* pi = p + i * seq;
      const T* doi = Row(dout, b, i, h, seq, heads, head_dim);
      const T* qi = Row(q, b, i, h, seq, heads, head_dim);
      T* dqi = Row(dq, b, i, h, seq, heads, head_dim);
      // dP_ij = dout_i . v_j ; dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij)
      double dot = 0;
      for (int64_t j = 0; j <= i; ++j) {
        const T* vj = Row(v, b, j, h, seq, heads, head_dim);
        double s = 0;
        for (int64_t d = 0; d < head_dim; ++d) s += static_cast<double>(doi[d]) * vj[d];
        dp[j] = s;
        dot += s * pi[j];
      }
      for (int64_t j = 0; j <= i; ++j) {
        const double ds = pi[j] * (dp[j] - dot) * scale;
        const T* kj = Row(k, b, j, h, seq, heads, head_dim);
        T* dkj = Row(dk, b, j, h, seq, heads, head_dim);
        T* dvj = Row(dv, b, j, h, seq, heads, head_dim);
        for (int64_t d = 0; d < head_dim; ++d) {
          dqi[d] += static_cast<T>(ds * kj[d]);
          dkj[d] += static_cast<T>(ds * qi[d]);
          dvj[d] += pi[j] * doi[d];
        }
      }
    }
  }
}

#define BATON_INSTANTIATE(T)                                                                                 \
  template void CausalAttentionForward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t, int64_t,   \
                                          int64_t);                                                          \
  template void CausalAttentionBackward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,     \
                                           int64_t, int64_t, int64_t, int64_t);
BATON_INSTANTIATE(float)
BATON_INSTANTIATE(double)
#undef BATON_INSTANTIATE

}  // namespace baton::cpu
