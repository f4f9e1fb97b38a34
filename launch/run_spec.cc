#include "launch/run_spec.h"

namespace baton {

ModelSpec ModelSpecFromConfig(const ModelConfig& m) {
  ModelSpec s;
  s.family = ModelConfig::Family_Name(m.family());
  s.layers = m.layers();
  s.hidden = m.hidden();
  s.heads = m.heads();
  s.ffn = m.ffn() > 0 ? m.ffn() : 4 * int64_t{m.hidden()};
  s.vocab = m.vocab();
  const int64_t multiple = m.vocab_multiple();
  s.padded_vocab = (s.vocab + multiple - 1) / multiple * multiple;
  s.max_positions = m.max_positions();
  s.positions = m.family() == ModelConfig::GPT2 ? PositionKind::kLearned : PositionKind::kRope;
  // GPT-style rotary models follow GPT-NeoX (half-split); RoFormer its paper (interleaved).
  const bool roformer = m.family() == ModelConfig::ROFORMER || m.family() == ModelConfig::ROFORMER_V2;
  switch (m.rope_style()) {
    case ModelConfig::INTERLEAVED: s.rope_style = ops::RopeStyle::kInterleaved; break;
    case ModelConfig::HALF_SPLIT: s.rope_style = ops::RopeStyle::kHalfSplit; break;
    default: s.rope_style = roformer ? ops::RopeStyle::kInterleaved : ops::RopeStyle::kHalfSplit;
  }
  s.rope_base = m.rope_base();
  s.norm = m.family() == ModelConfig::ROFORMER_V2 ? NormKind::kRmsNormNoGain : NormKind::kLayerNorm;
  if (roformer) {
    s.block = BlockKind::kPostNorm;
    s.embedding_norm = true;
    s.head = m.family() == ModelConfig::ROFORMER ? HeadKind::kMlmTransform : HeadKind::kTiedOnly;
    s.biases = m.family() == ModelConfig::ROFORMER;
  }
  s.norm_eps = m.norm_eps();
  s.init_std = m.init_std();
  return s;
}

AdafactorOptions AdafactorOptionsFromConfig(const OptimConfig& o) {
  AdafactorOptions a;
  a.eps1 = o.eps1();
  a.eps2 = o.eps2();
  a.clip_threshold = o.clip_threshold();
  a.decay_exponent = o.decay_exponent();
  a.beta1 = o.beta1();
  a.weight_decay = o.weight_decay();
  a.scale_parameter = o.scale_parameter();
  a.min_dim_to_factor = o.min_dim_to_factor();
  return a;
}

LrScheduleOptions LrScheduleFromConfig(const OptimConfig& o, int64_t total_steps) {
  LrScheduleOptions s;
  switch (o.lr_schedule()) {
    case OptimConfig::RELATIVE_STEP: s.kind = LrScheduleKind::kRelativeStep; break;
    case OptimConfig::CONSTANT: s.kind = LrScheduleKind::kConstant; break;
    case OptimConfig::LINEAR: s.kind = LrScheduleKind::kLinear; break;
    case OptimConfig::COSINE: s.kind = LrScheduleKind::kCosine; break;
  }
  s.lr = o.lr();
  s.warmup_steps = o.warmup_steps();
  s.min_lr_ratio = o.min_lr_ratio();
  s.total_steps = total_steps;
  return s;
}

RecomputePolicy RecomputeFromConfig(const ParallelConfig& parallel, int stage) {
  const ParallelConfig::Recompute policy =
      stage < parallel.stage_recompute_size() ? parallel.stage_recompute(stage) : parallel.recompute();
  switch (policy) {
    case ParallelConfig::SELECTIVE: return RecomputePolicy::kSelective;
    case ParallelConfig::FULL: return RecomputePolicy::kFull;
    default: return RecomputePolicy::kNone;
  }
}

Result<StageLayout> LayoutFromConfig(const RunConfig& config, const ModelSpec& spec, const std::string& source) {
  const ParallelConfig& p = config.parallel();
  Result<StageLayout> layout =
      p.stage_layers().empty()
          ? BalancedStageLayout(spec, config.train().seq_len(), p.stages(), p.virtual_stages())
          : ParseStageLayout(spec, p.stage_layers(), p.stages(), p.virtual_stages());
  if (!layout.ok()) return layout.status().WithContext(source);
  return layout;
}

}  // namespace baton
