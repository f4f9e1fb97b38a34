#include "layers/model_spec.h"

namespace baton {

int64_t ModelSpec::ParameterCount() const {
  const int64_t h = hidden, f = ffn;
  const int64_t norm_params = norm == NormKind::kLayerNorm ? 2 * h : (norm == NormKind::kRmsNorm ? h : 0);
  const int64_t bias_params = biases ? 3 * h + h + f + h : 0;
  const int64_t block = 3 * h * h + h * h + h * f + f * h + bias_params + 2 * norm_params;
  const int64_t pos = positions == PositionKind::kLearned ? max_positions * h : 0;
  int64_t head_params = 0;
  switch (head) {
    case HeadKind::kFinalNorm: head_params = norm_params; break;
    case HeadKind::kMlmTransform: head_params = h * h + h + norm_params + padded_vocab; break;
    case HeadKind::kTiedOnly: break;
  }
  return padded_vocab * h + pos + (embedding_norm ? norm_params : 0) + layers * block + head_params;
}

double ModelSpec::BlockForwardFlopsPerToken(int64_t seq_len) const {
  const double h = static_cast<double>(hidden), f = static_cast<double>(ffn);
  return 2.0 * (3 * h * h + h * h + 2 * h * f) + 2.0 * 2.0 * static_cast<double>(seq_len) * h;
}

}  // namespace baton
