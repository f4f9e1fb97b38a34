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

}  // namespace baton::testing
