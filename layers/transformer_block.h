// Pre-LN transformer block (GPT-2): x += attn(ln1(x)); x += mlp(ln2(x)).
// Attention is multi-head under the micro-batch's mask (causal for GPT's
// language modelling, a bidirectional source prefix for seq2seq) with a fused qkv projection (q | k | v, each
// `hidden` wide, head h at columns [h*d, (h+1)*d)), RoPE on q and k when the
// model uses rotary positions; the MLP is fc -> tanh-GELU -> proj.
#pragma once

#include <memory>
#include <string>

#include "layers/layer.h"
#include "layers/linear.h"
#include "layers/model_spec.h"
#include "layers/norm.h"

namespace baton {

class TransformerBlock : public Layer {
 public:
  TransformerBlock(const ModelSpec& spec, int64_t index, DType dtype, Device device);

  const std::string& name() const override { return name_; }
  std::vector<Param*> params() override;
  Tensor Forward(const MicroBatch& mb, const Tensor& x, std::unique_ptr<LayerActivations>* saved) override;
  Tensor BackwardInput(const MicroBatch& mb, const Tensor& grad_out, LayerActivations* saved) override;
  void BackwardWeight(const MicroBatch& mb, LayerActivations* saved) override;
  void SetSelectiveRecompute(bool on) override { selective_ = on; }

  Linear& qkv() { return qkv_; }
  Linear& attn_proj() { return attn_proj_; }
  Linear& fc() { return fc_; }
  Linear& mlp_proj() { return mlp_proj_; }
  Norm& ln1() { return ln1_; }
  Norm& ln2() { return ln2_; }

 private:
  ModelSpec spec_;
  std::string name_;
  Norm ln1_;
  Linear qkv_, attn_proj_;
  Norm ln2_;
  Linear fc_, mlp_proj_;
  bool selective_ = false;
};

}  // namespace baton
