// GELU, tanh form (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), fp32
// arithmetic on bf16 storage; elementwise maps with 16-byte accesses (op_utils.cuh).
#include <cmath>

#include "layers/cuda/kernels.h"
#include "layers/cuda/op_utils.cuh"

namespace baton::cuda {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

struct GeluOp {
  __device__ float operator()(float x, float) const {
    return 0.5f * x * (1.f + tanhf(kSqrt2OverPi * (x + kCubic * x * x * x)));
  }
};

struct GeluGradOp {  // (dy, x) -> dy * gelu'(x)
  __device__ float operator()(float dy, float x) const {
    const float t = tanhf(kSqrt2OverPi * (x + kCubic * x * x * x));
    const float du = kSqrt2OverPi * (1.f + 3.f * kCubic * x * x);
    return dy * (0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * du);
  }
};

}  // namespace

void GeluForward(const Bf16* x, Bf16* y, int64_t n) {
  detail::LaunchMap(x, static_cast<const Bf16*>(nullptr), y, n, GeluOp{});
}

void GeluBackward(const Bf16* dy, const Bf16* x, Bf16* dx, int64_t n) { detail::LaunchMap(dy, x, dx, n, GeluGradOp{}); }

}  // namespace baton::cuda
