#include "checkpoint/model_growth.h"

#include <cmath>
#include <sstream>

#include "checkpoint/width_growth.h"
#include "layers/model.h"

namespace baton {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// How one parameter grows: its tiling, whether it is repeated (embeddings,
// vectors) or block-diagonal (linear maps), the factor on its values, and the
// factor on its second-moment statistics.
struct ParamGrowth {
  BlockTiling tiling;
  bool repeat = true;
  double value_scale = 1, moment_scale = 1;
  bool query_key = false;  // qkv: Seed's method scales the q and k segments
};

Result<ParamGrowth> Classify(const std::string& name, const ModelSpec& small, int64_t k, int64_t kf) {
  // Gradient scales: 1/k for everything fed by or feeding the hidden stream, 1/k_f for
  // the MLP's inner vector; the second moment scales by their squares.
  const double k2 = 1.0 / static_cast<double>(k * k), kf2 = 1.0 / static_cast<double>(kf * kf);
  const double inv_k = 1.0 / static_cast<double>(k);
  const bool final_norm = (small.head == HeadKind::kFinalNorm && StartsWith(name, "ln_f.")) ||
                          (small.head == HeadKind::kMlmTransform && StartsWith(name, "head.ln."));
  // RoFormerV2's table is divided by k: the logits' gradient reaches each copy whole,
  // and its embedding norm's Jacobian (k times larger at x / k) undoes the 1/k from
  // above: the table's gradient, and so its statistics, are the small model's.
  if (name == "wte")
    return small.head == HeadKind::kTiedOnly ? ParamGrowth{{1, k}, true, inv_k, 1.0} : ParamGrowth{{1, k}, true, 1.0, k2};
  if (name == "wpe") return ParamGrowth{{1, k}, true, 1.0, k2};
  if (name == "head.bias") return ParamGrowth{{1, 1}, true, 1.0, 1.0};
  // The norm in front of the tied output: its output copies add up in the logits.
  if (final_norm) return ParamGrowth{{k, 1}, true, inv_k, 1.0};
  if (StartsWith(name, "ln_emb.") || name.find(".ln") != std::string::npos) return ParamGrowth{{k, 1}, true, 1.0, k2};
  if (EndsWith(name, "attn.qkv.weight")) return ParamGrowth{{k, k, 3}, false, 1.0, k2, true};
  if (EndsWith(name, "attn.qkv.bias")) return ParamGrowth{{k, 1, 3}, true, 1.0, k2, true};
  if (EndsWith(name, "attn.proj.weight") || name == "head.dense.weight") return ParamGrowth{{k, k}, false, 1.0, k2};
  if (EndsWith(name, "mlp.fc.weight")) return ParamGrowth{{kf, k}, false, 1.0, kf2};
  if (EndsWith(name, "mlp.fc.bias")) return ParamGrowth{{kf, 1}, true, 1.0, kf2};
  if (EndsWith(name, "mlp.proj.weight")) return ParamGrowth{{k, kf}, false, 1.0, k2};
  if (EndsWith(name, ".bias")) return ParamGrowth{{k, 1}, true, 1.0, k2};  // attn.proj, mlp.proj, head.dense
  return Status::InvalidArgument("growth: parameter " + name + " has no growth rule");
}

// The block index of old block i after inserting `added` blocks.
std::vector<int64_t> BlockPositions(int64_t old_layers, int64_t added, DepthPlacement placement) {
  std::vector<int64_t> pos(static_cast<size_t>(old_layers));
  int64_t inserted = 0;
  for (int64_t i = 0; i < old_layers; ++i) {
    pos[static_cast<size_t>(i)] = i + inserted;
    if (placement == DepthPlacement::kInterleaved)  // after old block i: the new ones due by then
      inserted = (i + 1) * added / old_layers;
  }
  return pos;
}

std::string Renamed(const std::string& name, const std::vector<int64_t>& positions) {
  if (!StartsWith(name, "blocks.")) return name;
  const size_t dot = name.find('.', 7);
  const int64_t i = std::stoll(name.substr(7, dot - 7));
  return "blocks." + std::to_string(positions[static_cast<size_t>(i)]) + name.substr(dot);
}

// The second-moment estimate Vhat of a parameter from its state tensors (full or R, C).
Result<Tensor> SecondMoment(const std::map<std::string, Tensor>& state, const std::string& name, const Tensor& param) {
  const std::string prefix = "adafactor/" + name + "/";
  if (auto it = state.find(prefix + "full"); it != state.end()) return it->second.Reshape(param.shape());
  auto r = state.find(prefix + "row"), c = state.find(prefix + "col");
  if (r == state.end() || c == state.end() || param.rank() != 2)
    return Status::InvalidArgument("growth: the checkpoint has no AdaFactor statistics for " + name);
  const int64_t n = param.dim(0), m = param.dim(1);
  double rsum = 0;
  for (int64_t i = 0; i < n; ++i) rsum += r->second.data<float>()[i];
  Tensor v = Tensor::Empty(param.shape(), DType::kF32);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j)
      v.data<float>()[i * m + j] = static_cast<float>(
          rsum > 0 ? static_cast<double>(r->second.data<float>()[i]) * c->second.data<float>()[j] / rsum : 0.0);
  return v;
}

// The big model's state tensors for a parameter, from its grown Vhat and momentum.
void StoreState(const std::string& name, const AdafactorState& layout, const Tensor& vhat, const Tensor* momentum,
                std::map<std::string, Tensor>* out) {
  const std::string prefix = "adafactor/" + name + "/";
  if (layout.factored) {
    const int64_t n = vhat.dim(0), m = vhat.dim(1);
    Tensor row = Tensor::Zeros({n}, DType::kF32), col = Tensor::Zeros({m}, DType::kF32);
    std::vector<double> r(static_cast<size_t>(n), 0.0), c(static_cast<size_t>(m), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) {
        r[static_cast<size_t>(i)] += vhat.data<float>()[i * m + j];
        c[static_cast<size_t>(j)] += vhat.data<float>()[i * m + j];
      }
    for (int64_t i = 0; i < n; ++i) row.data<float>()[i] = static_cast<float>(r[static_cast<size_t>(i)]);
    for (int64_t j = 0; j < m; ++j) col.data<float>()[j] = static_cast<float>(c[static_cast<size_t>(j)]);
    (*out)[prefix + "row"] = row;
    (*out)[prefix + "col"] = col;
  } else {
    (*out)[prefix + "full"] = vhat;
  }
  if (layout.momentum.defined())
    (*out)[prefix + "momentum"] = momentum ? *momentum : Tensor::Zeros(layout.momentum.shape(), DType::kF32);
}

}  // namespace

Status CheckGrowth(const ModelSpec& small, const ModelSpec& big, GrowthMethod method) {
  std::ostringstream p;
  auto same = [&](const char* field, auto a, auto b) {
    if (a != b) p << "\n  model." << field << ": " << a << " in the small model, " << b << " in the big one (must stay)";
  };
  same("family", small.family, big.family);
  same("vocab", small.vocab, big.vocab);
  same("vocab (padded rows)", small.padded_vocab, big.padded_vocab);
  same("max_positions", small.max_positions, big.max_positions);
  same("rope_style", static_cast<int>(small.rope_style), static_cast<int>(big.rope_style));
  same("rope_base", small.rope_base, big.rope_base);
  same("norm_eps", small.norm_eps, big.norm_eps);
  if (big.hidden % small.hidden != 0)
    p << "\n  model.hidden: " << big.hidden << " is not a multiple of the small model's " << small.hidden;
  else if (method == GrowthMethod::kSeed && big.heads != small.heads)
    p << "\n  model.heads: " << big.heads << ", expected " << small.heads
      << " (Seed's method keeps the head count and grows the head size to " << big.hidden / small.heads << ")";
  else if (method == GrowthMethod::kTile && big.heads != small.heads * (big.hidden / small.hidden))
    p << "\n  model.heads: " << big.heads << ", expected " << small.heads * (big.hidden / small.hidden)
      << " (head-count tiling keeps the head size " << small.head_dim() << ": heads x " << big.hidden / small.hidden
      << ")";
  if (big.ffn % small.ffn != 0)
    p << "\n  model.ffn: " << big.ffn << " is not a multiple of the small model's " << small.ffn;
  if (big.layers < small.layers)
    p << "\n  model.layers: " << big.layers << " is fewer than the small model's " << small.layers;
  if (big.layers > small.layers && small.block == BlockKind::kPostNorm)
    p << "\n  model.layers: " << small.family << " is post-LN: a new block computes norm(x + f(x)), which is not x "
      << "even when f adds 0, so depth growth cannot keep the function (grow the width only)";
  if (p.str().empty() && big.hidden == small.hidden && big.ffn == small.ffn && big.layers == small.layers)
    p << "\n  the big model has the small model's size: nothing to grow";
  if (!p.str().empty()) return Status::InvalidArgument("cannot grow this model into that one:" + p.str());
  return Status::OK();
}

Result<GrownModel> GrowModel(const ModelSpec& small, const ModelSpec& big, const std::map<std::string, Tensor>& params,
                             const std::map<std::string, Tensor>& adafactor, const AdafactorOptions& big_optim,
                             const GrowthOptions& options) {
  BATON_RETURN_IF_ERROR(CheckGrowth(small, big, options.method));
  const bool seed = options.method == GrowthMethod::kSeed;
  const int64_t k = big.hidden / small.hidden, kf = big.ffn / small.ffn, added = big.layers - small.layers;
  const std::vector<int64_t> positions = BlockPositions(small.layers, added, options.depth);
  const bool with_state = !adafactor.empty();
  GrownModel g;
  for (const auto& [name, value] : params) {
    BATON_ASSIGN_OR_RETURN(ParamGrowth rule, Classify(name, small, k, kf));
    const std::string to = Renamed(name, positions);
    Tensor grown = rule.repeat ? RepeatBlocks(value, rule.tiling, rule.value_scale)
                               : TileParameter(value, rule.tiling, options.noise, options.seed, to);
    if (seed) {
      grown = InterleaveCopies(grown, rule.tiling);
      if (rule.query_key && k > 1) {  // q and k: the first two thirds of the rows
        const double qk = std::pow(static_cast<double>(k), -0.25);
        const int64_t n = grown.numel() * 2 / 3;
        for (int64_t i = 0; i < n; ++i) grown.data<float>()[i] = static_cast<float>(grown.data<float>()[i] * qk);
      }
    }
    g.params[to] = grown;
    if (!with_state) continue;
    BATON_ASSIGN_OR_RETURN(Tensor vhat, SecondMoment(adafactor, name, value));
    const AdafactorState layout = NewAdafactorState(big_optim, grown.shape(), DType::kF32);
    auto laid_out = [&](Tensor t) { return seed ? InterleaveCopies(t, rule.tiling) : t; };
    Tensor momentum;
    if (auto m = adafactor.find("adafactor/" + name + "/momentum"); m != adafactor.end())
      momentum = laid_out(RepeatBlocks(m->second.Reshape(value.shape()), rule.tiling, 1.0));
    StoreState(to, layout, laid_out(RepeatBlocks(vhat, rule.tiling, rule.moment_scale)),
               momentum.defined() ? &momentum : nullptr, &g.adafactor);
  }
  // New blocks: a fresh model's initial weights, with the two projections that write
  // into the residual stream zeroed.
  std::vector<bool> taken(static_cast<size_t>(big.layers), false);
  for (int64_t p : positions) taken[static_cast<size_t>(p)] = true;
  for (int64_t b = 0; b < big.layers; ++b) {
    if (taken[static_cast<size_t>(b)]) continue;
    Model block = Model::Build(big, options.seed, DType::kF32, Device::CPU(), 1 + b, 2 + b);
    for (Param* p : block.params()) {
      Tensor v = p->value.Clone();
      if (EndsWith(p->name, "attn.proj.weight") || EndsWith(p->name, "attn.proj.bias") ||
          EndsWith(p->name, "mlp.proj.weight") || EndsWith(p->name, "mlp.proj.bias"))
        v.SetZero();
      g.params[p->name] = v;
      if (!with_state) continue;
      const AdafactorState layout = NewAdafactorState(big_optim, v.shape(), DType::kF32);
      StoreState(p->name, layout, Tensor::Zeros(v.shape(), DType::kF32), nullptr, &g.adafactor);
    }
  }
  std::ostringstream note;
  note << (seed ? "Seed's method" : "head-count tiling") << ", width: hidden " << small.hidden << " -> " << big.hidden << " (x" << k << ", heads " << small.heads << " -> "
       << big.heads << "), ffn " << small.ffn << " -> " << big.ffn << " (x" << kf << "), symmetry-breaking noise "
       << options.noise;
  g.notes.push_back(note.str());
  if (options.noise > 0 && k > 1) {
    // Off-diagonal noise n adds n^2 MS(W) per block and the diagonal pays back (k-1) of them.
    const double step = std::sqrt(1.0 + 2.0 * options.noise * options.noise * static_cast<double>(k * (k - 1)));
    std::ostringstream s;
    s << "noise raises RMS of the widened matrices, and so AdaFactor's relative step, by about x" << step
      << " over the small model's";
    g.notes.push_back(s.str());
  }
  if (added > 0)
    g.notes.push_back("depth: " + std::to_string(small.layers) + " -> " + std::to_string(big.layers) + " blocks, " +
                      std::to_string(added) + " new (" +
                      (options.depth == DepthPlacement::kInterleaved ? "interleaved" : "appended") +
                      ") with zero output projections");
  if (small.head == HeadKind::kTiedOnly && k > 1)
    g.notes.push_back("the token table is divided by " + std::to_string(k) +
                      " (no gain in front of the tied output): the embedding norm's epsilon acts " + std::to_string(k * k) +
                      " times larger");
  return g;
}

}  // namespace baton
