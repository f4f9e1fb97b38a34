#include "layers/post_norm_block.h"

#include "layers/ops.h"
#include "layers/self_attention.h"

namespace baton {
namespace {

struct PostNormActivations : LayerActivations {
  // Forward: what B and W need.
  Tensor x;          // block input: input of qkv
  Tensor qkv;        // q | k | v after RoPE on q and k
  Tensor lse;        // attention's per-query log-sum-exp
  Tensor att;        // attention output: input of attn_proj
  Norm::Saved n1, n2;
  Tensor x1;         // norm1 output: input of fc and the MLP's residual
  Tensor f, g;       // fc output, GELU output (dropped under selective recompute)
  // B: output gradients of each linear, consumed by W.
  Tensor d_qkv, d_att_out, d_f, d_mlp_out;
};

Tensor EmptyLike(const Tensor& t) { return Tensor::Empty(t.shape(), t.dtype(), t.device()); }

}  // namespace

PostNormBlock::PostNormBlock(const ModelSpec& spec, int64_t index, DType dtype, Device device)
    : spec_(spec),
      name_("blocks." + std::to_string(index)),
      qkv_(name_ + ".attn.qkv", spec.hidden, 3 * spec.hidden, spec.biases, dtype, device),
      attn_proj_(name_ + ".attn.proj", spec.hidden, spec.hidden, spec.biases, dtype, device),
      norm1_(name_ + ".ln1", spec.hidden, spec.norm, spec.norm_eps, dtype, device),
      fc_(name_ + ".mlp.fc", spec.hidden, spec.ffn, spec.biases, dtype, device),
      mlp_proj_(name_ + ".mlp.proj", spec.ffn, spec.hidden, spec.biases, dtype, device),
      norm2_(name_ + ".ln2", spec.hidden, spec.norm, spec.norm_eps, dtype, device) {}

std::vector<Param*> PostNormBlock::params() {
  std::vector<Param*> p;
  qkv_.AppendParams(&p);
  attn_proj_.AppendParams(&p);
  norm1_.AppendParams(&p);
  fc_.AppendParams(&p);
  mlp_proj_.AppendParams(&p);
  norm2_.AppendParams(&p);
  return p;
}

Tensor PostNormBlock::Forward(const MicroBatch& mb, const Tensor& x, std::unique_ptr<LayerActivations>* saved) {
  auto a = std::make_unique<PostNormActivations>();
  const int64_t seq = mb.seq_len();
  a->x = x;
  a->qkv = qkv_.Forward(x);
  SelfAttentionForward(spec_, seq, mb.mask, &a->qkv, &a->att, &a->lse);
  Tensor s1 = attn_proj_.Forward(a->att);
  a->x1 = norm1_.ForwardAdd(s1, x, &s1, &a->n1);  // norm1(x + attention)

  a->f = fc_.Forward(a->x1);
  a->g = EmptyLike(a->f);
  ops::GeluForward(a->f, &a->g);
  Tensor s2 = mlp_proj_.Forward(a->g);
  Tensor y = norm2_.ForwardAdd(s2, a->x1, &s2, &a->n2);  // norm2(x1 + MLP)
  if (selective_) a->g = Tensor();  // recomputed from f in W
  if (saved) *saved = std::move(a);
  return y;
}

Tensor PostNormBlock::BackwardInput(const MicroBatch& mb, const Tensor& dy, LayerActivations* saved) {
  auto* a = static_cast<PostNormActivations*>(saved);
  const int64_t seq = mb.seq_len();

  // MLP half: y = norm2(s2), s2 = x1 + proj(gelu(fc(x1))).
  a->d_mlp_out = norm2_.Backward(dy, a->n2);  // d s2
  a->d_f = mlp_proj_.BackwardInputGelu(a->d_mlp_out, a->f);
  Tensor dx1 = fc_.BackwardInput(a->d_f);
  ops::Add(dx1, a->d_mlp_out, &dx1);  // + the residual's gradient

  // Attention half: x1 = norm1(s1), s1 = x + proj(attn(x)).
  a->d_att_out = norm1_.Backward(dx1, a->n1);  // d s1
  Tensor datt = attn_proj_.BackwardInput(a->d_att_out);
  a->d_qkv = SelfAttentionBackward(spec_, seq, mb.mask, datt, a->qkv, a->att, a->lse);
  Tensor dx = qkv_.BackwardInput(a->d_qkv);
  ops::Add(dx, a->d_att_out, &dx);  // + the residual's gradient
  a->lse = a->qkv = Tensor();
  a->n1 = a->n2 = Norm::Saved{};
  return dx;
}

void PostNormBlock::BackwardWeight(const MicroBatch&, LayerActivations* saved) {
  auto* a = static_cast<PostNormActivations*>(saved);
  if (!a->g.defined()) {  // selective recompute
    a->g = EmptyLike(a->f);
    ops::GeluForward(a->f, &a->g);
  }
  mlp_proj_.BackwardWeight(a->g, a->d_mlp_out);
  fc_.BackwardWeight(a->x1, a->d_f);
  attn_proj_.BackwardWeight(a->att, a->d_att_out);
  qkv_.BackwardWeight(a->x, a->d_qkv);
}

}  // namespace baton
