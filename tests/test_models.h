// Tiny models and random micro-batches shared by the layer and pipeline tests.
#pragma once

#include <vector>

#include "layers/layer.h"
#include "layers/model_spec.h"
#include "runtime/rng.h"

namespace baton::testing {

inline ModelSpec TinyGpt(int64_t layers, int64_t hidden, int64_t heads, int64_t ffn, int64_t vocab,
                         int64_t padded_vocab, int64_t max_positions,
                         PositionKind positions = PositionKind::kLearned) {
  ModelSpec s;
  s.layers = layers;
  s.hidden = hidden;
  s.heads = heads;
  s.ffn = ffn;
  s.vocab = vocab;
  s.padded_vocab = padded_vocab;
  s.max_positions = max_positions;
  s.positions = positions;
  return s;
}

// A TinyGpt shape as RoFormer (post-LN, embedding LayerNorm, MLM transform head with a
// vocabulary bias) or RoFormerV2 (no biases, parameter-free RMS norm, tied output only),
// both with interleaved RoPE, as launch/run_spec.cc builds them from the config.
inline ModelSpec TinyRoformer(bool v2, int64_t layers, int64_t hidden, int64_t heads, int64_t ffn, int64_t vocab,
                              int64_t padded_vocab, int64_t max_positions) {
  ModelSpec s = TinyGpt(layers, hidden, heads, ffn, vocab, padded_vocab, max_positions, PositionKind::kRope);
  s.family = v2 ? "ROFORMER_V2" : "ROFORMER";
  s.rope_style = ops::RopeStyle::kInterleaved;
  s.block = BlockKind::kPostNorm;
  s.embedding_norm = true;
  s.head = v2 ? HeadKind::kTiedOnly : HeadKind::kMlmTransform;
  s.norm = v2 ? NormKind::kRmsNormNoGain : NormKind::kLayerNorm;
  s.biases = !v2;
  return s;
}

// Which masks RandomMaskedMicroBatches draws.
enum class RandomObjective {
  kMaskedLm,  // bidirectional over a random length; targets at about a third of the real positions
  kSeq2Seq,   // a random source prefix; targets from the last source position to the end
};

// `count` micro-batches of [batch, seq] uniform random tokens and targets below `vocab`,
// a pure function of (seed, stream).
inline std::vector<MicroBatch> RandomMicroBatches(uint64_t seed, uint64_t stream, int count, int64_t batch,
                                                  int64_t seq, int64_t vocab) {
  RandomStream rng(seed, stream);
  std::vector<MicroBatch> out(static_cast<size_t>(count));
  for (MicroBatch& mb : out) {
    mb.tokens = Tensor::Empty({batch, seq}, DType::kI32);
    mb.targets = Tensor::Empty({batch, seq}, DType::kI32);
    for (int64_t i = 0; i < mb.tokens.numel(); ++i) {
      mb.tokens.data<int32_t>()[i] = static_cast<int32_t>(rng.Below(static_cast<uint64_t>(vocab)));
      mb.targets.data<int32_t>()[i] = static_cast<int32_t>(rng.Below(static_cast<uint64_t>(vocab)));
    }
  }
  return out;
}

// As RandomMicroBatches, with per-example lengths (some rows padded), masks and
// kIgnoreTarget where `objective` has no target; every row keeps at least one target.
inline std::vector<MicroBatch> RandomMaskedMicroBatches(uint64_t seed, uint64_t stream, int count, int64_t batch,
                                                        int64_t seq, int64_t vocab, RandomObjective objective) {
  std::vector<MicroBatch> out = RandomMicroBatches(seed, stream, count, batch, seq, vocab);
  RandomStream rng(seed, stream + 1000003);
  for (MicroBatch& mb : out) {
    mb.mask.lengths = Tensor::Empty({batch}, DType::kI32);
    mb.mask.prefix_lengths = Tensor::Empty({batch}, DType::kI32);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t length = seq - static_cast<int64_t>(rng.Below(static_cast<uint64_t>(seq / 2)));  // [seq/2+1, seq]
      const int64_t prefix = objective == RandomObjective::kMaskedLm
                                 ? seq
                                 : 1 + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(length - 1)));
      mb.mask.lengths.data<int32_t>()[b] = static_cast<int32_t>(length);
      mb.mask.prefix_lengths.data<int32_t>()[b] = static_cast<int32_t>(prefix);
      int32_t* t = mb.targets.data<int32_t>() + b * seq;
      bool any = false;
      for (int64_t i = 0; i < seq; ++i) {
        const bool keep = i < length && (objective == RandomObjective::kMaskedLm ? rng.Uniform() < 0.35 : i >= prefix - 1);
        if (!keep) t[i] = kIgnoreTarget;
        any = any || keep;
      }
      if (!any) t[0] = 1;
    }
  }
  return out;
}

}  // namespace baton::testing
