#include "layers/self_attention.h"

namespace baton {

void SelfAttentionForward(const ModelSpec& spec, int64_t seq, const ops::AttentionMask& mask, Tensor* qkv,
                          Tensor* att, Tensor* lse) {
  const int64_t h = spec.hidden, rows = qkv->dim(0);
  // q and k (columns [0, 2h)) rotate in place, in one call; attention reads q, k, v out of qkv.
  if (spec.positions == PositionKind::kRope)
    ops::Rope(qkv, 0, 2 * h, seq, h / spec.heads, spec.rope_style, spec.rope_base, false);
  *att = Tensor::Empty({rows, h}, qkv->dtype(), qkv->device());
  *lse = Tensor::Empty({rows / seq, spec.heads, seq}, ops::AccumulationType(qkv->dtype()), qkv->device());
  ops::AttentionForward(*qkv, seq, spec.heads, mask, att, lse);
}

Tensor SelfAttentionBackward(const ModelSpec& spec, int64_t seq, const ops::AttentionMask& mask, const Tensor& datt,
                             const Tensor& qkv, const Tensor& att, const Tensor& lse) {
  const int64_t h = spec.hidden;
  // dq | dk | dv straight into d_qkv (every element written), then dq and dk rotated back.
  Tensor d_qkv = Tensor::Empty(qkv.shape(), qkv.dtype(), qkv.device());
  ops::AttentionBackward(datt, qkv, att, lse, seq, spec.heads, mask, &d_qkv);
  if (spec.positions == PositionKind::kRope)
    ops::Rope(&d_qkv, 0, 2 * h, seq, h / spec.heads, spec.rope_style, spec.rope_base, true);
  return d_qkv;
}

}  // namespace baton
