// Small models of every family with random weights, and their logits, for the
// growth tests.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "layers/loss_head.h"
#include "layers/model.h"
#include "tests/test_models.h"

namespace baton::testing {

enum class Family { kGpt2, kGptRope, kRoformer, kRoformerV2 };
inline const char* FamilyName(Family f) {
  switch (f) {
    case Family::kGpt2: return "GPT2";
    case Family::kGptRope: return "GPT_ROPE";
    case Family::kRoformer: return "ROFORMER";
    default: return "ROFORMER_V2";
  }
}

inline ModelSpec SmallSpec(Family f, int64_t layers = 2) {
  ModelSpec s = f == Family::kGpt2 || f == Family::kGptRope
                    ? TinyGpt(layers, 8, 2, 16, 13, 16, 8, f == Family::kGpt2 ? PositionKind::kLearned : PositionKind::kRope)
                    : TinyRoformer(f == Family::kRoformerV2, layers, 8, 2, 16, 13, 16, 8);
  s.family = FamilyName(f);
  // RoFormer's own epsilon (HF, bert4keras): RoFormerV2's width growth is exact only when
  // the embedding norm's epsilon is negligible (model_growth.h).
  if (f == Family::kRoformer || f == Family::kRoformerV2) s.norm_eps = 1e-12;
  return s;
}

inline ModelSpec Grown(ModelSpec s, int64_t k_hidden, int64_t k_ffn, int64_t layers = 0) {
  s.hidden *= k_hidden;
  s.heads *= k_hidden;
  s.ffn *= k_ffn;
  if (layers > 0) s.layers = layers;
  return s;
}

// Every parameter drawn at random (not the init: zero biases and unit gains would hide
// mistakes), gains around 1.
inline std::map<std::string, Tensor> RandomParams(const ModelSpec& spec, uint64_t seed) {
  Model m = Model::Build(spec, seed);
  std::map<std::string, Tensor> out;
  RandomStream rng(seed, 77);
  for (Param* p : m.params()) {
    const bool gain = p->name.find("ln") != std::string::npos && p->name.find("weight") != std::string::npos;
    Tensor t = Tensor::Empty(p->value.shape(), DType::kF32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>((gain ? 1.0 : 0.0) + 0.3 * rng.Normal());
    out[p->name] = t;
  }
  return out;
}

inline Model ModelWith(const ModelSpec& spec, const std::map<std::string, Tensor>& params) {
  Model m = Model::Build(spec, 1);
  for (Param* p : m.params()) {
    auto it = params.find(p->name);
    BATON_CHECK(it != params.end(), "no parameter " << p->name);
    BATON_CHECK(it->second.shape() == p->value.shape(), p->name << ": " << it->second.Describe() << " for "
                                                               << p->value.Describe());
    p->value.CopyFrom(it->second);
    p->RefreshCompute();
  }
  return m;
}

// fp32 logits over the real vocabulary at every position, [rows * vocab].
inline std::vector<double> Logits(const ModelSpec& spec, const std::map<std::string, Tensor>& params,
                                  const MicroBatch& mb) {
  Model m = ModelWith(spec, params);
  Tensor x;
  for (size_t i = 0; i + 1 < m.layers().size(); ++i) x = m.layers()[i]->Forward(mb, x, nullptr);
  const std::vector<double> all = static_cast<LossHead*>(m.layers().back().get())->Logits(x).ToDoubles();
  std::vector<double> out;
  for (int64_t r = 0; r < x.dim(0); ++r)
    out.insert(out.end(), all.begin() + r * spec.padded_vocab, all.begin() + r * spec.padded_vocab + spec.vocab);
  return out;
}

// A batch for the family: causal for GPT, masked LM with padding for RoFormer,
// UniLM with padding for RoFormerV2.
inline MicroBatch BatchFor(Family f, uint64_t stream) {
  if (f == Family::kGpt2 || f == Family::kGptRope) return RandomMicroBatches(9, stream, 1, 2, 8, 13)[0];
  return RandomMaskedMicroBatches(9, stream, 1, 2, 8, 13,
                                  f == Family::kRoformer ? RandomObjective::kMaskedLm : RandomObjective::kSeq2Seq)[0];
}

}  // namespace baton::testing
