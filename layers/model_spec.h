// Everything the layers need to know about a model's shape, independent of
// how it was configured (launch/ turns the run config into a ModelSpec).
#pragma once

#include <cstdint>
#include <string>

#include "layers/norm.h"
#include "layers/ops.h"

namespace baton {

enum class PositionKind { kLearned, kRope };
// Where the blocks normalise: pre-LN (GPT-2: x += f(norm(x))) or post-LN (BERT,
// RoFormer: x = norm(x + f(x))).
enum class BlockKind { kPreNorm, kPostNorm };
// What the loss head does before the tied output matrix:
//   kFinalNorm     a final norm (GPT-2's ln_f);
//   kMlmTransform  dense -> GELU -> norm, and a bias on the logits (BERT's and
//                  RoFormer's masked-LM head);
//   kTiedOnly      nothing: the last post-LN block's output is already normalised
//                  (RoFormerV2: no bias either).
enum class HeadKind { kFinalNorm, kMlmTransform, kTiedOnly };

struct ModelSpec {
  std::string family = "GPT2";  // for messages and reports
  int64_t layers = 12;
  int64_t hidden = 768;
  int64_t heads = 12;
  int64_t ffn = 3072;
  int64_t vocab = 50257;          // real vocabulary: the loss never sees rows beyond it
  int64_t padded_vocab = 50304;   // rows of the embedding table
  int64_t max_positions = 1024;
  PositionKind positions = PositionKind::kLearned;
  ops::RopeStyle rope_style = ops::RopeStyle::kHalfSplit;
  double rope_base = 10000;
  NormKind norm = NormKind::kLayerNorm;
  bool biases = true;  // in the blocks' linear layers (RoFormerV2 has none)
  BlockKind block = BlockKind::kPreNorm;
  bool embedding_norm = false;  // normalise the embedding output (BERT, RoFormer)
  HeadKind head = HeadKind::kFinalNorm;
  double norm_eps = 1e-5;
  double init_std = 0.02;

  int64_t head_dim() const { return hidden / heads; }
  // Layers of the ordered list: the embedding, `layers` blocks, the loss head.
  int64_t list_size() const { return layers + 2; }
  // Parameters of the whole model (the tied embedding counted once).
  int64_t ParameterCount() const;
  // Matrix-multiply FLOPs of a forward pass per token at sequence length s, counting
  // 2 per multiply-add: one transformer block (the attention score and value
  // products included), and the tied LM head.
  double BlockForwardFlopsPerToken(int64_t seq_len) const;
  double HeadForwardFlopsPerToken() const {
    return 2.0 * hidden * padded_vocab + (head == HeadKind::kMlmTransform ? 2.0 * hidden * hidden : 0.0);
  }
};

}  // namespace baton
