// Last layer of the list: what ModelSpec::head asks for before the output
// (GPT-2: final norm; RoFormer: dense -> GELU -> norm and a vocabulary bias;
// RoFormerV2: nothing), the LM head tied to the token embedding, and softmax
// cross-entropy over the real vocabulary at the positions that have a target.
//
// The logits are never materialised for the whole micro-batch: rows are
// processed in chunks, and in training the chunk's logit gradient is turned
// into d(normed input) and the embedding gradient right away, inside Forward
// (a full [tokens, vocab] gradient would dwarf every other activation). So a
// training Forward of this layer must run exactly once per micro-batch; it
// keeps only the final norm's input and d(normed input) for BackwardInput,
// and BackwardWeight has nothing left to do.
//
// The head's share of the tied table's gradient goes to its own buffer, not
// into the shared Param's grad: the table's gradient is then always (sum of
// the embedding's contributions) + (sum of the head's), whether the two ends
// live in one process or on two pipeline ranks, so every layout computes
// bitwise the same numbers. Model::FoldTiedGradients adds the buffer in.
#pragma once

#include <memory>
#include <string>

#include "layers/layer.h"
#include "layers/linear.h"
#include "layers/model_spec.h"
#include "layers/norm.h"

namespace baton {

class LossHead : public Layer {
 public:
  LossHead(const ModelSpec& spec, std::shared_ptr<Param> token_table, DType dtype, Device device);

  const std::string& name() const override { return name_; }
  std::vector<Param*> params() override;
  // Returns a one-element tensor: the sum of the micro-batch's token losses (nats).
  Tensor Forward(const MicroBatch& mb, const Tensor& x, std::unique_ptr<LayerActivations>* saved) override;
  Tensor BackwardInput(const MicroBatch& mb, const Tensor& grad_out, LayerActivations* saved) override;
  void BackwardWeight(const MicroBatch& mb, LayerActivations* saved) override;
  bool computes_loss() const override { return true; }

  Norm* final_norm() { return norm_.get(); }  // null for HeadKind::kTiedOnly
  Param* token_table() { return tokens_.get(); }
  // The head's accumulated share of d(objective)/d(token table) since the last fold.
  Tensor& table_grad() { return table_grad_; }
  // Logits [rows, padded_vocab] of head inputs x [rows, hidden], as Forward computes them
  // before the softmax (transform or final norm, tied output matrix, bias), for all rows at
  // once: for inference and parity tests on a few rows, not for training.
  Tensor Logits(const Tensor& x) const;

 private:
  struct Activations;
  // The head's input transform (per ModelSpec::head) of x; fills a->x and a->f for the
  // MLM transform, and a->norm when `keep`.
  Tensor Transform(const Tensor& x, Activations* a, bool keep) const;

  std::string name_ = "head";
  int64_t vocab_;
  std::unique_ptr<Linear> dense_;  // kMlmTransform
  std::unique_ptr<Norm> norm_;     // kFinalNorm ("ln_f"), kMlmTransform ("head.ln")
  std::unique_ptr<Param> bias_;    // kMlmTransform: "head.bias", [padded_vocab]
  std::shared_ptr<Param> tokens_;
  Tensor table_grad_;
};

}  // namespace baton
