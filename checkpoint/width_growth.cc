#include "checkpoint/width_growth.h"

#include <cmath>

#include "runtime/rng.h"

namespace baton {
namespace {

// [k_out * rows, k_in * cols] from one [rows, cols] segment, `block(a, b, i, j)` giving each entry.
template <typename Block>
void FillSegment(int64_t rows, int64_t cols, const BlockTiling& t, float* out, int64_t out_cols, Block block) {
  for (int64_t a = 0; a < t.k_out; ++a)
    for (int64_t i = 0; i < rows; ++i) {
      float* row = out + (a * rows + i) * out_cols;
      for (int64_t b = 0; b < t.k_in; ++b)
        for (int64_t j = 0; j < cols; ++j) row[b * cols + j] = block(a, b, i, j);
    }
}

double Rms(const float* w, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(w[i]) * w[i];
  return n ? std::sqrt(s / static_cast<double>(n)) : 0.0;
}

Shape GrownShape(const Tensor& w, const BlockTiling& t) {
  if (w.rank() == 1) return {w.dim(0) * t.k_out};
  return {w.dim(0) * t.k_out, w.dim(1) * t.k_in};
}

}  // namespace

Tensor TileParameter(const Tensor& w, const BlockTiling& t, double noise, uint64_t seed, const std::string& name) {
  BATON_CHECK(w.dtype() == DType::kF32 && w.device().is_cpu() && (w.rank() == 1 || w.rank() == 2) &&
                  w.dim(0) % t.segments == 0,
              "TileParameter " << name << ": " << w.Describe());
  if (w.rank() == 1) return RepeatBlocks(w, t, 1.0);
  const int64_t seg_rows = w.dim(0) / t.segments, cols = w.dim(1), out_cols = cols * t.k_in;
  Tensor out = Tensor::Empty(GrownShape(w, t), DType::kF32);
  const uint64_t stream = StreamId("baton.grow/" + name);
  for (int64_t s = 0; s < t.segments; ++s) {
    const float* src = w.data<float>() + s * seg_rows * cols;
    float* dst = out.data<float>() + s * seg_rows * t.k_out * out_cols;
    const double scale = noise * Rms(src, seg_rows * cols);
    // The block that pays back row a's noise: column a mod k_in (square tilings: a).
    auto noise_at = [&](int64_t a, int64_t b, int64_t i, int64_t j) {
      const uint64_t index = ((static_cast<uint64_t>(s * t.k_out + a) * t.k_in + b) * seg_rows + i) * cols + j;
      return static_cast<float>(scale * NormalAt(seed, stream, index));
    };
    const double share = 1.0 / static_cast<double>(t.k_in);
    FillSegment(seg_rows, cols, t, dst, out_cols, [&](int64_t a, int64_t b, int64_t i, int64_t j) -> float {
      const double w = share * src[i * cols + j];
      if (scale == 0) return static_cast<float>(w);
      if (b != a % t.k_in) return static_cast<float>(w + noise_at(a, b, i, j));
      double rest = 0;  // the row's off-diagonal noise, which the diagonal block pays back
      for (int64_t c = 0; c < t.k_in; ++c)
        if (c != b) rest += noise_at(a, c, i, j);
      return static_cast<float>(w - rest);
    });
  }
  return out;
}

Tensor RepeatBlocks(const Tensor& v, const BlockTiling& t, double scale) {
  BATON_CHECK(v.dtype() == DType::kF32 && v.device().is_cpu() && (v.rank() == 1 || v.rank() == 2) &&
                  v.dim(0) % t.segments == 0,
              "RepeatBlocks: " << v.Describe());
  Tensor out = Tensor::Empty(GrownShape(v, t), DType::kF32);
  const int64_t seg_rows = v.dim(0) / t.segments, cols = v.rank() == 2 ? v.dim(1) : 1;
  const int64_t out_cols = v.rank() == 2 ? cols * t.k_in : 1;
  const BlockTiling per_segment{t.k_out, v.rank() == 2 ? t.k_in : 1, 1};
  for (int64_t s = 0; s < t.segments; ++s) {
    const float* src = v.data<float>() + s * seg_rows * cols;
    float* dst = out.data<float>() + s * seg_rows * t.k_out * out_cols;
    FillSegment(seg_rows, cols, per_segment, dst, out_cols, [&](int64_t, int64_t, int64_t i, int64_t j) {
      return static_cast<float>(scale * src[i * cols + j]);
    });
  }
  return out;
}

Tensor InterleaveCopies(const Tensor& blocked, const BlockTiling& t) {
  Tensor out = Tensor::Empty(blocked.shape(), DType::kF32);
  const int64_t rows = blocked.dim(0) / t.segments / t.k_out, cols = blocked.rank() == 2 ? blocked.dim(1) : 1;
  const int64_t k_in = blocked.rank() == 2 ? t.k_in : 1, small_cols = cols / k_in;
  const int64_t seg = rows * t.k_out;
  for (int64_t s = 0; s < t.segments; ++s)
    for (int64_t a = 0; a < t.k_out; ++a)
      for (int64_t i = 0; i < rows; ++i) {
        const float* src = blocked.data<float>() + (s * seg + a * rows + i) * cols;
        float* dst = out.data<float>() + (s * seg + i * t.k_out + a) * cols;
        for (int64_t b = 0; b < k_in; ++b)
          for (int64_t j = 0; j < small_cols; ++j) dst[j * k_in + b] = src[b * small_cols + j];
      }
  return out;
}

}  // namespace baton
