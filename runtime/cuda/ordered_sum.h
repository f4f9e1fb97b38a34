// The local half of a deterministic sum across ranks (runtime/nccl_transport.cc):
// out[k] = ((blocks[0][k] + blocks[1][k]) + blocks[2][k]) + ..., in the
// element type itself, the same order and rounding as the MPI transport's
// host loop, so both transports give the same bits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/dtype.h"

namespace baton::cuda {

// `blocks` holds `count` blocks of `n` elements, `stride` elements apart; f32 or f64.
void OrderedSum(DType dtype, const void* blocks, int count, int64_t stride, int64_t n, void* out, cudaStream_t stream);

}  // namespace baton::cuda
