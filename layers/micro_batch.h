// One micro-batch as every layer sees it: the input tokens, what each
// position is trained to predict, and which positions each position attends
// to. The objective (data/) decides all three: causal LM, masked LM or UniLM
// seq2seq differ only in these tensors, not in the layers.
#pragma once

#include <cstdint>

#include "layers/ops.h"
#include "runtime/tensor.h"

namespace baton {

// A target that adds nothing to the loss (and gets no gradient): a padding
// position, an unselected masked-LM position, a seq2seq source position.
constexpr int32_t kIgnoreTarget = -1;

struct MicroBatch {
  Tensor tokens;   // i32 [batch, seq]: model input
  Tensor targets;  // i32 [batch, seq]: the token each position predicts, or kIgnoreTarget
  // Which keys each query sees (ops.h): causal by default; bidirectional for masked
  // LM, UniLM's source prefix for seq2seq, and padding lengths for short examples.
  ops::AttentionMask mask;
  // d(objective)/d(sum of this micro-batch's token losses): 1 / (loss targets in the whole
  // step), so that gradients accumulated over micro-batches are those of the step's mean loss.
  double loss_scale = 1.0;

  int64_t batch() const { return tokens.dim(0); }
  int64_t seq_len() const { return tokens.dim(1); }
  // Positions whose target is not kIgnoreTarget (targets must be on the host).
  int64_t LossTargets() const;
  // A copy with every tensor on `device`.
  MicroBatch To(Device device) const;
};

}  // namespace baton
