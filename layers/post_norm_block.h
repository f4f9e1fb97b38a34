// Post-LN transformer block (BERT, RoFormer):
//   x1 = norm1(x + proj(attn(x)));  y = norm2(x1 + mlp(x1)).
// Attention is multi-head under the micro-batch's mask (bidirectional for
// masked LM, UniLM's prefix mask for seq2seq) over the fused qkv projection, with RoPE on q and k when the model uses
// rotary positions (RoFormer: interleaved pairs); the MLP is fc -> tanh-GELU
// -> proj. With spec.biases false and NormKind::kRmsNormNoGain it is
// RoFormerV2's block: no biases, parameter-free RMS norm.
#pragma once

#include <memory>
#include <string>

#include "layers/layer.h"
#include "layers/linear.h"
#include "layers/model_spec.h"
#include "layers/norm.h"

namespace baton {

class PostNormBlock : public Layer {
 public:
  PostNormBlock(const ModelSpec& spec, int64_t index, DType dtype, Device device);

  const std::string& name() const override { return name_; }
  std::vector<Param*> params() override;
  Tensor Forward(const MicroBatch& mb, const Tensor& x, std::unique_ptr<LayerActivations>* saved) override;
  Tensor BackwardInput(const MicroBatch& mb, const Tensor& grad_out, LayerActivations* saved) override;
  void BackwardWeight(const MicroBatch& mb, LayerActivations* saved) override;
  void SetSelectiveRecompute(bool on) override { selective_ = on; }

 private:
  ModelSpec spec_;
  std::string name_;
  Linear qkv_, attn_proj_;
  Norm norm1_;
  Linear fc_, mlp_proj_;
  Norm norm2_;
  bool selective_ = false;
};

}  // namespace baton
