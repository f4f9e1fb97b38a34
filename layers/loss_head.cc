#include "layers/loss_head.h"

#include <algorithm>

#include "layers/ops.h"

namespace baton {
namespace {
// Logits are computed for this many bytes' worth of rows at a time (at least
// 256 rows): small enough to never dominate memory, large enough for the GPU's
// matrix products to run at full speed.
constexpr int64_t kLogitBytesPerChunk = 512ll << 20;

Tensor ZerosLike(const Tensor& t) {
  MemoryScope scope(MemoryCategory::kGradients);
  return Tensor::Zeros(t.shape(), t.dtype(), t.device());
}


}  // namespace

struct LossHead::Activations : LayerActivations {
  Tensor x, f;  // kMlmTransform: the head's input and the dense output (GELU's input)
  Norm::Saved norm;
  Tensor d_normed;  // d(objective)/d(input of the output matrix)
  Tensor d_f;       // kMlmTransform: d(objective)/d(dense output), for W
};

LossHead::LossHead(const ModelSpec& spec, std::shared_ptr<Param> token_table, DType dtype, Device device)
    : vocab_(spec.vocab), tokens_(std::move(token_table)), table_grad_(ZerosLike(tokens_->grad)) {
  if (spec.head == HeadKind::kFinalNorm) {
    norm_ = std::make_unique<Norm>("ln_f", spec.hidden, spec.norm, spec.norm_eps, dtype, device);
  } else if (spec.head == HeadKind::kMlmTransform) {
    dense_ = std::make_unique<Linear>("head.dense", spec.hidden, spec.hidden, true, dtype, device);
    norm_ = std::make_unique<Norm>("head.ln", spec.hidden, spec.norm, spec.norm_eps, dtype, device);
    bias_ = std::make_unique<Param>("head.bias", Shape{spec.padded_vocab}, dtype, device);
  }
}

std::vector<Param*> LossHead::params() {
  std::vector<Param*> p;
  if (dense_) dense_->AppendParams(&p);
  if (norm_) norm_->AppendParams(&p);
  if (bias_) p.push_back(bias_.get());
  p.push_back(tokens_.get());
  return p;
}

Tensor LossHead::Transform(const Tensor& x, Activations* a, bool keep) const {
  if (dense_) {
    a->x = x;
    a->f = dense_->Forward(x);
    Tensor g = Tensor::Empty(a->f.shape(), a->f.dtype(), a->f.device());
    ops::GeluForward(a->f, &g);
    return norm_->Forward(g, keep ? &a->norm : nullptr);
  }
  return norm_ ? norm_->Forward(x, keep ? &a->norm : nullptr) : x;
}

Tensor LossHead::Forward(const MicroBatch& mb, const Tensor& x, std::unique_ptr<LayerActivations>* saved) {
  auto a = std::make_unique<Activations>();
  Tensor normed = Transform(x, a.get(), saved != nullptr);
  const Tensor& table = tokens_->compute;
  const int64_t rows = normed.dim(0), padded_vocab = table.dim(0);
  const Tensor targets = mb.targets.Reshape({rows});
  if (saved) a->d_normed = Tensor::Empty(normed.shape(), normed.dtype(), normed.device());

  const int64_t chunk_rows =
      std::max<int64_t>(256, kLogitBytesPerChunk / (padded_vocab * static_cast<int64_t>(SizeOf(x.dtype()))));
  Tensor losses = Tensor::Empty({rows}, ops::AccumulationType(x.dtype()), x.device());
  Tensor logits = Tensor::Empty({std::min(rows, chunk_rows), padded_vocab}, x.dtype(), x.device());
  for (int64_t begin = 0; begin < rows; begin += chunk_rows) {
    const int64_t end = std::min(rows, begin + chunk_rows);
    Tensor z = logits.Rows(0, end - begin);
    Tensor xn = normed.Rows(begin, end);
    Tensor chunk_losses = losses.Rows(begin, end);
    ops::Matmul(xn, false, table, true, &z);
    if (bias_) ops::AddBias(bias_->compute, &z);
    // In training the logits are overwritten in place by their gradient.
    ops::SoftmaxCrossEntropy(z, targets.Rows(begin, end), vocab_, &chunk_losses, saved ? &z : nullptr,
                             mb.loss_scale);
    if (!saved) continue;
    Tensor dxn = a->d_normed.Rows(begin, end);
    ops::Matmul(z, false, table, false, &dxn);
    ops::Matmul(z, true, xn, false, &table_grad_, 1.0, 1.0);
    if (bias_) ops::BiasGrad(z, &bias_->grad);
  }
  if (saved) *saved = std::move(a);

  Tensor out = Tensor::Empty({1}, DType::kF64);
  out.data<double>()[0] = ops::Sum(losses);
  return out;
}

Tensor LossHead::Logits(const Tensor& x) const {
  Activations unused;
  const Tensor normed = Transform(x, &unused, false);
  const Tensor& table = tokens_->compute;
  Tensor logits = Tensor::Empty({normed.dim(0), table.dim(0)}, normed.dtype(), normed.device());
  ops::Matmul(normed, false, table, true, &logits);
  if (bias_) ops::AddBias(bias_->compute, &logits);
  return logits;
}

Tensor LossHead::BackwardInput(const MicroBatch&, const Tensor&, LayerActivations* saved) {
  auto* a = static_cast<Activations*>(saved);
  if (!norm_) return a->d_normed;
  Tensor d = norm_->Backward(a->d_normed, a->norm);
  a->norm = Norm::Saved{};
  if (!dense_) return d;
  a->d_f = Tensor::Empty(a->f.shape(), a->f.dtype(), a->f.device());
  ops::GeluBackward(d, a->f, &a->d_f);
  return dense_->BackwardInput(a->d_f);
}

void LossHead::BackwardWeight(const MicroBatch&, LayerActivations* saved) {
  auto* a = static_cast<Activations*>(saved);
  if (dense_) dense_->BackwardWeight(a->x, a->d_f);
}

}  // namespace baton
