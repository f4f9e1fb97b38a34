// Width growth by head-count tiling (REFERENCE.md, "Lossless growth"): the
// hidden vector becomes k_h copies of itself, the heads k_h times as many
// (head size kept), the MLP's inner vector k_f copies. Every linear map
// becomes a block matrix whose block rows each sum to the old matrix, so on
// copied inputs it gives copied outputs; norms of a copied vector are copies
// of the norm. The same function, up to float rounding of the block sums.
// Every block is W / k_in (not W on the diagonal and 0 elsewhere): then each
// block's gradient is the small model's over k, and AdaFactor's relative step
// (scale_parameter) moves every block by RMS(W / k_in) x U, whose block-row sum
// is exactly the small model's step: training continues at the same effective
// learning rate.
//
// Symmetry breaking keeps the function exact: block (a, b) off the diagonal
// gets an independent N(0, (noise x RMS(W))^2) matrix added, and the diagonal
// block pays back its row's noise. Equal inputs make any such matrix exact, while the block
// columns now differ, so the copies of a hidden unit get different gradients
// and can diverge. The same noise in every block would keep them identical
// forever (the pitfall REFERENCE.md describes); noise 0 is plain tiling.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/tensor.h"

namespace baton {

// How a [rows, cols] parameter tiles: k_out x k_in blocks (1 x 1: unchanged).
struct BlockTiling {
  int64_t k_out = 1, k_in = 1;
  // Stacked row segments tiled separately (qkv: q | k | v, each `rows / segments` rows).
  int64_t segments = 1;
};

// A parameter ([rows, cols] f32, or a vector [n] tiled along k_out) grown by
// `t`: blocks W / k_in plus the noise above, drawn from (seed, name). Vectors
// (biases, norm gains) are repeated.
Tensor TileParameter(const Tensor& w, const BlockTiling& t, double noise, uint64_t seed, const std::string& name);

// Every block equal to `v` x scale: how per-element optimizer statistics of a
// tiled parameter carry over.
Tensor RepeatBlocks(const Tensor& v, const BlockTiling& t, double scale);

// The same tensor with the copies of each element adjacent instead of in blocks
// (row a * rows + i -> i * k_out + a within each segment, and likewise for
// columns): Seed's method duplicates every hidden unit in place, so that each
// head keeps its columns together and grows from d to k d of them.
Tensor InterleaveCopies(const Tensor& blocked, const BlockTiling& t);

}  // namespace baton
