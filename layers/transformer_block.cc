#include "layers/transformer_block.h"

#include "layers/ops.h"
#include "layers/self_attention.h"

namespace baton {
namespace {

struct BlockActivations : LayerActivations {
  // Forward: what B and W need.
  Norm::Saved ln1, ln2;
  Tensor h1;             // ln1 output: input of qkv
  Tensor qkv;            // q | k | v, [rows, 3 hidden], q and k after RoPE: attention reads it in place
  Tensor lse;            // attention's per-query log-sum-exp (flash-style: no probabilities kept)
  Tensor att;            // attention output: input of attn_proj and of attention's backward
  Tensor h2;             // ln2 output: input of fc
  Tensor f;              // fc output: GELU input
  Tensor g;              // GELU output: input of mlp_proj (dropped under selective recompute)
  // B: output gradients of each linear, consumed by W.
  Tensor d_qkv, d_att_out, d_f, d_mlp_out;
};

Tensor EmptyLike(const Tensor& t) { return Tensor::Empty(t.shape(), t.dtype(), t.device()); }

}  // namespace

TransformerBlock::TransformerBlock(const ModelSpec& spec, int64_t index, DType dtype, Device device)
    : spec_(spec),
      name_("blocks." + std::to_string(index)),
      ln1_(name_ + ".ln1", spec.hidden, spec.norm, spec.norm_eps, dtype, device),
      qkv_(name_ + ".attn.qkv", spec.hidden, 3 * spec.hidden, true, dtype, device),
      attn_proj_(name_ + ".attn.proj", spec.hidden, spec.hidden, true, dtype, device),
      ln2_(name_ + ".ln2", spec.hidden, spec.norm, spec.norm_eps, dtype, device),
      fc_(name_ + ".mlp.fc", spec.hidden, spec.ffn, true, dtype, device),
      mlp_proj_(name_ + ".mlp.proj", spec.ffn, spec.hidden, true, dtype, device) {}

std::vector<Param*> TransformerBlock::params() {
  std::vector<Param*> p;
  ln1_.AppendParams(&p);
  qkv_.AppendParams(&p);
  attn_proj_.AppendParams(&p);
  ln2_.AppendParams(&p);
  fc_.AppendParams(&p);
  mlp_proj_.AppendParams(&p);
  return p;
}

Tensor TransformerBlock::Forward(const MicroBatch& mb, const Tensor& x, std::unique_ptr<LayerActivations>* saved) {
  auto a = std::make_unique<BlockActivations>();
  // Attention half.
  a->h1 = ln1_.Forward(x, &a->ln1);
  a->qkv = qkv_.Forward(a->h1);
  SelfAttentionForward(spec_, mb.seq_len(), mb.mask, &a->qkv, &a->att, &a->lse);
  Tensor x2 = attn_proj_.Forward(a->att);

  // MLP half; x2 += x (the residual) fused with ln2.
  a->h2 = ln2_.ForwardAdd(x2, x, &x2, &a->ln2);
  a->f = fc_.Forward(a->h2);
  a->g = EmptyLike(a->f);
  ops::GeluForward(a->f, &a->g);
  Tensor y = mlp_proj_.Forward(a->g);
  ops::Add(y, x2, &y);

  if (selective_) {
    // Attention keeps no [seq, seq] probabilities to drop (the fused kernel
    // recomputes them in backward anyway); the GELU output is the largest
    // tensor that is cheap to recompute (from f).
    a->g = Tensor();
  }
  if (saved) *saved = std::move(a);
  return y;
}

Tensor TransformerBlock::BackwardInput(const MicroBatch& mb, const Tensor& dy, LayerActivations* saved) {
  auto* a = static_cast<BlockActivations*>(saved);

  // MLP half: y = x2 + proj(gelu(fc(ln2(x2)))).
  a->d_mlp_out = dy;
  a->d_f = mlp_proj_.BackwardInputGelu(dy, a->f);  // through GELU, fused
  Tensor dh2 = fc_.BackwardInput(a->d_f);
  Tensor dx2 = ln2_.Backward(dh2, a->ln2, &dy);  // + dy, the residual's gradient

  // Attention half: x2 = x + proj(attn(ln1(x))).
  a->d_att_out = dx2;
  Tensor datt = attn_proj_.BackwardInput(dx2);
  a->d_qkv = SelfAttentionBackward(spec_, mb.seq_len(), mb.mask, datt, a->qkv, a->att, a->lse);
  Tensor dh1 = qkv_.BackwardInput(a->d_qkv);
  Tensor dx = ln1_.Backward(dh1, a->ln1, &dx2);  // + dx2, the residual's gradient
  // W needs only the linears' inputs and output gradients (and f, to recompute g).
  a->lse = a->qkv = Tensor();
  a->ln1 = a->ln2 = Norm::Saved{};
  return dx;
}

void TransformerBlock::BackwardWeight(const MicroBatch&, LayerActivations* saved) {
  auto* a = static_cast<BlockActivations*>(saved);
  if (!a->g.defined()) {  // selective recompute
    a->g = EmptyLike(a->f);
    ops::GeluForward(a->f, &a->g);
  }
  mlp_proj_.BackwardWeight(a->g, a->d_mlp_out);
  fc_.BackwardWeight(a->h2, a->d_f);
  attn_proj_.BackwardWeight(a->att, a->d_att_out);
  qkv_.BackwardWeight(a->h1, a->d_qkv);
}

}  // namespace baton
