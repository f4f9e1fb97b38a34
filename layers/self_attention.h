// The attention part both block kinds share: RoPE on q and k of the fused qkv
// projection (when the model uses rotary positions), then multi-head
// attention under a mask (causal for GPT, bidirectional for RoFormer).
#pragma once

#include "layers/model_spec.h"
#include "layers/ops.h"

namespace baton {

// Rotates q and k of qkv ([rows, 3 hidden]) in place, then fills *att ([rows, hidden])
// and *lse ([batch, heads, seq]), which it allocates.
void SelfAttentionForward(const ModelSpec& spec, int64_t seq, const ops::AttentionMask& mask, Tensor* qkv,
                          Tensor* att, Tensor* lse);
// d(qkv) of the pre-rotation qkv, from d(att) and what the forward kept.
Tensor SelfAttentionBackward(const ModelSpec& spec, int64_t seq, const ops::AttentionMask& mask, const Tensor& datt,
                             const Tensor& qkv, const Tensor& att, const Tensor& lse);

}  // namespace baton
