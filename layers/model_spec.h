// Everything the layers need to know about a model's shape, independent of
// how it was configured (launch/ turns the run config into a ModelSpec).
#pragma once

#include <cstdint>
#include <string>

#include "layers/norm.h"
#include "layers/ops.h"

namespace baton {

enum class PositionKind { kLearned, kRope };

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
  double HeadForwardFlopsPerToken() const { return 2.0 * hidden * padded_vocab; }
};

}  // namespace baton
