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

struct HeadActivations : LayerActivations {
  Norm::Saved norm;
  Tensor d_normed;  // d(objective)/d(final norm output)
};
}  // namespace

LossHead::LossHead(const ModelSpec& spec, std::shared_ptr<Param> token_table, DType dtype, Device device)
    : vocab_(spec.vocab), norm_("ln_f", spec.hidden, spec.norm, spec.norm_eps, dtype, device),
      tokens_(std::move(token_table)),
      table_grad_(ZerosLike(tokens_->grad)) {}

std::vector<Param*> LossHead::params() {
  std::vector<Param*> p;
  norm_.AppendParams(&p);
  p.push_back(tokens_.get());
  return p;
}

Tensor LossHead::Forward(const MicroBatch& mb, const Tensor& x, std::unique_ptr<LayerActivations>* saved) {
  auto a = std::make_unique<HeadActivations>();
  Tensor normed = norm_.Forward(x, saved ? &a->norm : nullptr);
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
    // In training the logits are overwritten in place by their gradient.
    ops::SoftmaxCrossEntropy(z, targets.Rows(begin, end), vocab_, &chunk_losses, saved ? &z : nullptr,
                             mb.loss_scale);
    if (!saved) continue;
    Tensor dxn = a->d_normed.Rows(begin, end);
    ops::Matmul(z, false, table, false, &dxn);
    ops::Matmul(z, true, xn, false, &table_grad_, 1.0, 1.0);
  }
  if (saved) *saved = std::move(a);

  Tensor out = Tensor::Empty({1}, DType::kF64);
  out.data<double>()[0] = ops::Sum(losses);
  return out;
}

Tensor LossHead::BackwardInput(const MicroBatch&, const Tensor&, LayerActivations* saved) {
  auto* a = static_cast<HeadActivations*>(saved);
  return norm_.Backward(a->d_normed, a->norm);
}

}  // namespace baton
