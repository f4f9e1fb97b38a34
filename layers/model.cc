#include "layers/model.h"

#include <cmath>
#include <set>

#include "layers/embedding_layer.h"
#include "layers/loss_head.h"
#include "layers/ops.h"
#include "layers/param_init.h"
#include "layers/post_norm_block.h"
#include "layers/transformer_block.h"

namespace baton {
namespace {

// GPT-2 init: N(0, std) weights, the two residual projections N(0, std / sqrt(2 L)),
// zero biases, unit norm gains. Post-LN models (BERT, RoFormer) renormalise after
// every residual add, so their projections keep N(0, std), as BERT's init does.
void InitParams(const ModelSpec& spec, uint64_t seed, const std::vector<Param*>& params) {
  const double residual_std =
      spec.block == BlockKind::kPreNorm ? spec.init_std / std::sqrt(2.0 * spec.layers) : spec.init_std;
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (Param* p : params) {
    const std::string& n = p->name;
    const bool is_norm = n.find(".ln") != std::string::npos || n.rfind("ln_", 0) == 0;
    if (is_norm) {
      InitConstant(p, ends_with(n, ".weight") ? 1.0 : 0.0);
    } else if (ends_with(n, ".bias")) {
      InitConstant(p, 0.0);
    } else if (ends_with(n, "attn.proj.weight") || ends_with(n, "mlp.proj.weight")) {
      InitNormal(p, seed, residual_std);
    } else {
      InitNormal(p, seed, spec.init_std);
    }
  }
}

}  // namespace

Model Model::Build(const ModelSpec& spec, uint64_t seed, DType dtype, Device device, int64_t first, int64_t last) {
  if (last < 0) last = spec.list_size();
  BATON_CHECK(0 <= first && first < last && last <= spec.list_size(),
              "layer range [" << first << ", " << last << ") of a " << spec.list_size() << "-layer list");
  Model m;
  m.spec_ = spec;
  std::shared_ptr<Param> tokens;
  auto token_table = [&] {
    if (!tokens) tokens = std::make_shared<Param>("wte", Shape{spec.padded_vocab, spec.hidden}, dtype, device);
    return tokens;
  };
  for (int64_t i = first; i < last; ++i) {
    if (i == 0) {
      m.layers_.push_back(std::make_unique<EmbeddingLayer>(spec, token_table(), dtype, device));
    } else if (i == spec.list_size() - 1) {
      m.layers_.push_back(std::make_unique<LossHead>(spec, token_table(), dtype, device));
    } else {
      if (spec.block == BlockKind::kPostNorm)
        m.layers_.push_back(std::make_unique<PostNormBlock>(spec, i - 1, dtype, device));
      else
        m.layers_.push_back(std::make_unique<TransformerBlock>(spec, i - 1, dtype, device));
    }
  }
  InitParams(spec, seed, m.params());
  return m;
}

std::vector<Param*> Model::params() const {
  std::vector<Param*> out;
  std::set<Param*> seen;
  for (const auto& layer : layers_)
    for (Param* p : layer->params())
      if (seen.insert(p).second) out.push_back(p);
  return out;
}

Param* Model::FindParam(const std::string& name) const {
  for (Param* p : params())
    if (p->name == name) return p;
  return nullptr;
}

void Model::FoldTiedGradients() const {
  for (const auto& layer : layers_) {
    if (!layer->computes_loss()) continue;
    auto* head = static_cast<LossHead*>(layer.get());
    ops::Axpy(1.0, head->table_grad(), &head->token_table()->grad);
    head->table_grad().SetZero();
  }
}

}  // namespace baton
