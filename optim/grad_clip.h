// Global gradient-norm clipping. The norm is split into SquaredGradNorm and a
// scale so that a pipeline/data-parallel trainer can all-reduce the squared
// norm across ranks before deciding the factor (ClipFactor).
//
// Gradients may live on the host or on a GPU (any mix): host gradients are
// handled here in element order; GPU gradients by the device ops
// (ops::SumsOfSquares, ops::Scale) in the fixed order of their kernels.
#pragma once

#include <vector>

#include "layers/param.h"

namespace baton {

// Sum of squares of every gradient element, accumulated in double in a fixed
// order (deterministic: element order on the host, the device kernel's fixed
// order on a GPU). fp32 or fp64 gradients. The GPU sums of all parameters come
// back in one copy: one wait for the GPU per call, none without GPU gradients.
// Per parameter, in order: the partial sums SquaredGradNorm adds up in that
// order. A pipeline gathers these from every stage and adds them in the
// model's parameter order, so every layout computes the same norm bitwise.
std::vector<double> SquaredGradNorms(const std::vector<Param*>& params);
double SquaredGradNorm(const std::vector<Param*>& params);

// grad *= factor for every parameter (GPU gradients: enqueued, no wait).
void ScaleGrads(const std::vector<Param*>& params, double factor);

// The factor that brings a gradient of global norm `norm` down to `max_norm`:
// max_norm / norm when norm > max_norm > 0, else 1.
double ClipFactor(double norm, double max_norm);

// Returns the pre-clip global norm and scales the gradients by
// ClipFactor(norm, max_norm). max_norm <= 0: no clipping.
double ClipGradNorm(const std::vector<Param*>& params, double max_norm);

}  // namespace baton
