// Lossless growth as a checkpoint transform: a small model's parameters (and
// AdaFactor state) become a larger model's that computes the same function.
//   width: head-count tiling (width_growth.h) by k_h = big.hidden / small.hidden
//          (heads x k_h, head size kept) and k_f = big.ffn / small.ffn, for every
//          family; the norm in front of the tied output is divided by k_h so that
//          the logits stay equal (RoFormerV2 has no gain there: its token table
//          is divided instead, which leaves only the embedding norm's epsilon
//          acting k_h^2 times larger; exact when norm_eps is small, e.g. 1e-12).
//   depth: pre-LN models only; new blocks (initialised as a fresh model would
//          be) whose attention output and MLP down projections, weights and
//          biases, are zero, so each adds exactly 0 to the residual stream.
//          A post-LN block renormalises its output, x = norm(x + 0) != x, so
//          post-LN depth growth is refused.
// AdaFactor state: right after width growth every block of a widened
// parameter sees 1/k_h of the small model's gradient (1/k_f in the MLP's inner
// layer), so the second-moment estimate becomes repeat(Vhat) / k^2 (row and
// column sums follow) and the update U = G / sqrt(Vhat) is the small model's;
// the final norm's gradient is unchanged (so is its estimate; RoFormerV2's
// token table, divided by k, likewise); new blocks start
// from zero state; momentum (an average of U) is repeated as it is. With
// relative steps (optim.scale_parameter) and no noise the function then moves
// exactly as the small model's would (width_growth.h); noise raises the step by
// sqrt(1 + 2 noise^2 k (k-1)). The step counter is kept.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "layers/model_spec.h"
#include "optim/adafactor.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

enum class GrowthMethod {
  kTile,  // head-count tiling: heads x k_h, head size kept; exact for every family
  // Seed's method (Su 2021): heads kept, head size x k_h, every hidden unit
  // duplicated in place, q and k scaled by k_h^(-1/4) so that q.k / sqrt(head size)
  // is unchanged. Exact with learned positions; with RoPE it is approximate (the
  // grow command measures it): the frequencies depend on the head size, and a
  // unit's two in-place copies fall into one rotary pair. Its AdaFactor state
  // follows the tiling rules, which do not make its first steps the small
  // model's exactly (q and k are rescaled).
  // (Su scales the copies by 1/sqrt(2) and q, k by 2^(1/4) instead: the same
  // function without LayerNorm's epsilon, which plain copies keep exact.)
  kSeed,
};

enum class DepthPlacement {
  kInterleaved,  // new blocks spread evenly between the old ones
  kAppended,     // new blocks after the last old one
};

struct GrowthOptions {
  GrowthMethod method = GrowthMethod::kTile;
  double noise = 0;  // symmetry breaking: off-diagonal blocks N(0, (noise x RMS(W))^2); 0 = none
  uint64_t seed = 0;  // noise, and the initial weights of new blocks
  DepthPlacement depth = DepthPlacement::kInterleaved;
};

struct GrownModel {
  std::map<std::string, Tensor> params;  // host f32, by parameter name
  // "adafactor/<param>/<part>" tensors as checkpoints hold them (empty without state).
  std::map<std::string, Tensor> adafactor;
  std::vector<std::string> notes;  // what was done, one line each
};

// OK when `big` can be grown from `small`; otherwise says which field and why.
Status CheckGrowth(const ModelSpec& small, const ModelSpec& big, GrowthMethod method = GrowthMethod::kTile);

// `params`: every parameter of the small model (host f32). `adafactor`: its
// state tensors by checkpoint name, or empty (the grown model then has none
// either); `big_optim` decides the grown state's layout (factored or not).
Result<GrownModel> GrowModel(const ModelSpec& small, const ModelSpec& big, const std::map<std::string, Tensor>& params,
                             const std::map<std::string, Tensor>& adafactor, const AdafactorOptions& big_optim,
                             const GrowthOptions& options);

}  // namespace baton
