// First layer of the list: token embedding (shared with the tied LM head) plus,
// for learned positions, the position table; then, for BERT-like models
// (ModelSpec::embedding_norm), a norm "ln_emb".
#pragma once

#include <memory>
#include <string>

#include "layers/layer.h"
#include "layers/model_spec.h"
#include "layers/norm.h"

namespace baton {

class EmbeddingLayer : public Layer {
 public:
  // `token_table` is the shared [padded_vocab, hidden] token embedding.
  EmbeddingLayer(const ModelSpec& spec, std::shared_ptr<Param> token_table, DType dtype, Device device);

  const std::string& name() const override { return name_; }
  std::vector<Param*> params() override;
  Tensor Forward(const MicroBatch& mb, const Tensor& x, std::unique_ptr<LayerActivations>* saved) override;
  Tensor BackwardInput(const MicroBatch& mb, const Tensor& grad_out, LayerActivations* saved) override;
  void BackwardWeight(const MicroBatch& mb, LayerActivations* saved) override;

  Param* positions() { return positions_.get(); }

 private:
  std::string name_ = "embedding";
  std::shared_ptr<Param> tokens_;
  std::unique_ptr<Param> positions_;  // null with RoPE
  std::unique_ptr<Norm> norm_;        // null without embedding_norm
};

}  // namespace baton
