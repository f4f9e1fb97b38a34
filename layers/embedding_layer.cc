#include "layers/embedding_layer.h"

#include "layers/ops.h"

namespace baton {
namespace {
struct EmbeddingActivations : LayerActivations {
  Norm::Saved norm;
  Tensor grad_out;  // d(objective)/d(embedding sum), kept by B for W
};
}  // namespace

EmbeddingLayer::EmbeddingLayer(const ModelSpec& spec, std::shared_ptr<Param> token_table, DType dtype, Device device)
    : tokens_(std::move(token_table)) {
  if (spec.positions == PositionKind::kLearned)
    positions_ = std::make_unique<Param>("wpe", Shape{spec.max_positions, spec.hidden}, dtype, device);
  if (spec.embedding_norm) norm_ = std::make_unique<Norm>("ln_emb", spec.hidden, spec.norm, spec.norm_eps, dtype, device);
}

std::vector<Param*> EmbeddingLayer::params() {
  std::vector<Param*> p{tokens_.get()};
  if (positions_) p.push_back(positions_.get());
  if (norm_) norm_->AppendParams(&p);
  return p;
}

Tensor EmbeddingLayer::Forward(const MicroBatch& mb, const Tensor&, std::unique_ptr<LayerActivations>* saved) {
  const Tensor& table = tokens_->compute;
  Tensor y = Tensor::Empty({mb.tokens.numel(), table.dim(1)}, table.dtype(), table.device());
  ops::EmbeddingForward(mb.tokens, table, &y);
  if (positions_) ops::AddPositions(positions_->compute, mb.seq_len(), &y);
  auto a = std::make_unique<EmbeddingActivations>();
  if (norm_) y = norm_->Forward(y, saved ? &a->norm : nullptr);
  if (saved) *saved = std::move(a);
  return y;
}

Tensor EmbeddingLayer::BackwardInput(const MicroBatch&, const Tensor& grad_out, LayerActivations* saved) {
  auto* a = static_cast<EmbeddingActivations*>(saved);
  if (norm_) {
    a->grad_out = norm_->Backward(grad_out, a->norm);
    a->norm = Norm::Saved{};
  } else {
    a->grad_out = grad_out;
  }
  return Tensor();
}

void EmbeddingLayer::BackwardWeight(const MicroBatch& mb, LayerActivations* saved) {
  const Tensor& dy = static_cast<EmbeddingActivations*>(saved)->grad_out;
  ops::EmbeddingBackward(mb.tokens, dy, &tokens_->grad);
  if (positions_) ops::PositionsBackward(dy, mb.seq_len(), &positions_->grad);
}

}  // namespace baton
