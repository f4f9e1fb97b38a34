// RoPE against the float64 vectors of REFERENCE.md.
#include <gtest/gtest.h>

#include "layers/ops.h"
#include "tests/layers/grad_check.h"

namespace baton {
namespace {

// Rotates x (one head of size 4) placed at position m of a sequence.
std::vector<double> RotateAt(std::vector<double> x, int m, ops::RopeStyle style) {
  const int64_t d = static_cast<int64_t>(x.size());
  Tensor t = Tensor::Zeros({m + 1, d}, DType::kF64);
  std::copy(x.begin(), x.end(), t.data<double>() + m * d);
  ops::Rope(&t, 0, d, m + 1, d, style, 10000, false);
  return std::vector<double>(t.data<double>() + m * d, t.data<double>() + (m + 1) * d);
}

void ExpectVector(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "element " << i;
}

TEST(Rope, ReferenceVectors) {
  const std::vector<double> x = {1, 2, 3, 4};
  ExpectVector(RotateAt(x, 1, ops::RopeStyle::kInterleaved), {-1.142640, 1.922076, 2.959851, 4.029800});
  ExpectVector(RotateAt(x, 1, ops::RopeStyle::kHalfSplit), {-1.984111, 1.959901, 2.462378, 4.019800});
  ExpectVector(RotateAt(x, 3, ops::RopeStyle::kInterleaved), {-1.272233, -1.838865, 2.878668, 4.088187});
}

TEST(Rope, ScoresDependOnlyOnRelativePosition) {
  Tensor q = testing::RandomTensor({8}, 30), k = testing::RandomTensor({8}, 31);
  for (auto style : {ops::RopeStyle::kInterleaved, ops::RopeStyle::kHalfSplit}) {
    std::vector<double> qv = q.ToDoubles(), kv = k.ToDoubles();
    auto dot = [](const std::vector<double>& a, const std::vector<double>& b) {
      double s = 0;
      for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
      return s;
    };
    const double near = dot(RotateAt(qv, 5, style), RotateAt(kv, 2, style));
    const double far = dot(RotateAt(qv, 13, style), RotateAt(kv, 10, style));
    EXPECT_NEAR(near, far, 1e-10);
    EXPECT_GT(std::fabs(near - dot(qv, kv)), 1e-6);  // the rotation did something
  }
}

// A column range rotates exactly as the same columns on their own, and nothing else moves:
// q and k of a packed qkv rotate in one call, v untouched.
TEST(Rope, ColumnRangeOfPackedRows) {
  const int64_t seq = 7, rows = 2 * seq, head_dim = 6, heads = 2, h = heads * head_dim;
  for (auto style : {ops::RopeStyle::kInterleaved, ops::RopeStyle::kHalfSplit}) {
    const Tensor qkv = testing::RandomTensor({rows, 3 * h}, 32);
    Tensor packed = qkv.Clone();
    ops::Rope(&packed, 0, 2 * h, seq, head_dim, style, 10000, false);
    for (int64_t begin : {int64_t{0}, h, 2 * h}) {
      Tensor part = Tensor::Empty({rows, h}, DType::kF64), rotated = Tensor::Empty({rows, h}, DType::kF64);
      ops::CopyColumns(qkv, begin, &part);
      ops::CopyColumns(packed, begin, &rotated);
      if (begin < 2 * h) ops::Rope(&part, 0, h, seq, head_dim, style, 10000, false);
      EXPECT_EQ(rotated.ToDoubles(), part.ToDoubles()) << "columns from " << begin;  // bitwise
    }
    // An inner range (the k block alone) leaves the columns on both sides alone.
    Tensor k_only = qkv.Clone();
    ops::Rope(&k_only, h, h, seq, head_dim, style, 10000, false);
    const auto got = k_only.ToDoubles(), before = qkv.ToDoubles(), both = packed.ToDoubles();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < 3 * h; ++c) {
        const int64_t i = r * 3 * h + c;
        EXPECT_EQ(got[i], c >= h && c < 2 * h ? both[i] : before[i]) << "row " << r << " column " << c;
      }
  }
}

}  // namespace
}  // namespace baton
