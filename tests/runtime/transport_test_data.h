// Test data shared by the transport tests (MPI and NCCL): each rank's data is
// a pure function of (seed, stream), so any rank can recompute what every
// other rank holds and check results locally, bitwise.
#pragma once

#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/rng.h"
#include "runtime/tensor.h"

namespace baton {

inline constexpr uint64_t kSeed = 20240611;

// Non-zero random host data for stream `stream`; magnitudes spread over 1e-2..1e2
// (varying with stream and index) so that the order of a sum matters.
inline Tensor RandomTensor(const Shape& shape, DType dtype, uint64_t stream) {
  Tensor t = Tensor::Empty(shape, dtype);
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t u = static_cast<uint64_t>(i);
    const double scale = std::pow(10.0, static_cast<double>((stream + u) % 5) - 2.0);
    const double x = NormalAt(kSeed, stream, u) * scale;
    switch (dtype) {
      case DType::kF32: t.data<float>()[i] = static_cast<float>(x); break;
      case DType::kF64: t.data<double>()[i] = x; break;
      case DType::kI32: t.data<int32_t>()[i] = static_cast<int32_t>(BitsAt(kSeed, stream, u) | 1u); break;
      case DType::kBF16:
      case DType::kU16: static_cast<uint16_t*>(t.raw())[i] = static_cast<uint16_t>(BitsAt(kSeed, stream, u) | 1u); break;
    }
  }
  return t;
}

inline bool SameBits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// ((x0 + x1) + x2) + ... over the given streams, computed here in the dtype.
template <typename T>
Tensor OrderedSum(const Shape& shape, DType dtype, const std::vector<uint64_t>& streams) {
  Tensor sum = RandomTensor(shape, dtype, streams[0]);
  for (size_t s = 1; s < streams.size(); ++s) {
    Tensor x = RandomTensor(shape, dtype, streams[s]);
    for (int64_t i = 0; i < sum.numel(); ++i) sum.data<T>()[i] += x.data<T>()[i];
  }
  return sum;
}

inline std::vector<uint64_t> Streams(uint64_t base, int n) {
  std::vector<uint64_t> s;
  for (int r = 0; r < n; ++r) s.push_back(base + static_cast<uint64_t>(r));
  return s;
}

}  // namespace baton
