// The CUDA fused attention (bf16 tensor cores, fp32 accumulation) against the
// f64 CPU reference run on the very same bf16 values, so that only the GPU's
// own rounding differs: P and dS rounded to bf16 before their products, fp32
// sums, and out / dq / dk / dv rounded to bf16 at the end.
//
// Tolerances, each relative to the largest |reference| element of the tensor
// (what was seen on an H100 is about a quarter of these):
//   out:          max |error| <= 1e-2, root-mean-square error <= 5e-3
//   dq, dk, dv:   max |error| <= 2e-2, root-mean-square error <= 1e-2
//   lse (fp32):   max |error| <= 1e-4 (absolute; lse is a few units)
// Fresh inputs are drawn for every case; outputs start as NaN, so an element
// the kernels never write fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "layers/ops.h"
#include "tests/gpu_test.h"
#include "tests/layers/grad_check.h"

namespace baton {
namespace {
using testing::RandomTensor;

struct Case {
  std::string name;
  int64_t batch = 0, seq = 0, heads = 0, head_dim = 0;
  int64_t prefix = 0;
  std::vector<int32_t> prefix_lengths, lengths;  // empty: not given
};

Case MakeCase(const std::string& name, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
              int64_t prefix = 0) {
  Case c;
  c.name = name;
  c.batch = batch;
  c.seq = seq;
  c.heads = heads;
  c.head_dim = head_dim;
  c.prefix = prefix;
  return c;
}
Case Causal(int64_t seq, int64_t head_dim) { return MakeCase("causal", 2, seq, 3, head_dim); }
Case Bidirectional(int64_t seq, int64_t head_dim) { return MakeCase("bidirectional", 2, seq, 3, head_dim, seq); }
// UniLM: example 0 has a third of the sequence as source and 5 padding tokens,
// example 1 half as source and no padding.
Case UniLm(int64_t seq, int64_t head_dim) {
  Case c = MakeCase("UniLM+padding", 2, seq, 3, head_dim);
  c.prefix_lengths = {static_cast<int32_t>(seq / 3), static_cast<int32_t>(seq / 2)};
  c.lengths = {static_cast<int32_t>(seq - 5), static_cast<int32_t>(seq)};
  return c;
}

ops::AttentionMask MaskOn(const Case& c, Device device) {
  ops::AttentionMask mask;
  mask.prefix = c.prefix;
  if (!c.prefix_lengths.empty())
    mask.prefix_lengths = Tensor::FromVector<int32_t>({c.batch}, c.prefix_lengths).To(device);
  if (!c.lengths.empty()) mask.lengths = Tensor::FromVector<int32_t>({c.batch}, c.lengths).To(device);
  return mask;
}

// A GPU tensor whose every element is NaN.
Tensor Poisoned(const Shape& shape, DType dtype) {
  Tensor t = Tensor::Empty(shape, DType::kF64);
  std::fill(t.data<double>(), t.data<double>() + t.numel(), std::numeric_limits<double>::quiet_NaN());
  return ops::Cast(t, dtype).To(Device::CUDA(0));
}

// Expects got ~ ref: max and root-mean-square |error|, relative to max |ref|; NaN fails.
void ExpectClose(const std::vector<double>& got, const std::vector<double>& ref, double max_tol, double rms_tol,
                 const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double scale = 0, max_err = 0, sum_sq = 0;
  for (double x : ref) scale = std::max(scale, std::fabs(x));
  ASSERT_GT(scale, 0) << what << ": the reference is all zero; the check would be vacuous";
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(got[i] - ref[i]);
    ASSERT_FALSE(std::isnan(err)) << what << ": element " << i << " is " << got[i] << ", expected " << ref[i];
    max_err = std::max(max_err, err);
    sum_sq += err * err;
  }
  const double rms = std::sqrt(sum_sq / static_cast<double>(ref.size()));
  EXPECT_LE(max_err / scale, max_tol) << what << ": max error " << max_err << ", max |ref| " << scale;
  EXPECT_LE(rms / scale, rms_tol) << what << ": rms error " << rms << ", max |ref| " << scale;
}

// Columns [block * cols, (block + 1) * cols) of each row of a [rows, 3 cols] tensor's values.
std::vector<double> Block(const std::vector<double>& packed, int64_t rows, int64_t cols, int block) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const auto row = packed.begin() + r * 3 * cols;
    out.insert(out.end(), row + block * cols, row + (block + 1) * cols);
  }
  return out;
}

void CheckAgainstCpu(const Case& c, uint64_t seed) {
  SCOPED_TRACE(c.name + ", batch " + std::to_string(c.batch) + ", seq " + std::to_string(c.seq) + ", heads " +
               std::to_string(c.heads) + ", head_dim " + std::to_string(c.head_dim));
  const int64_t rows = c.batch * c.seq, cols = c.heads * c.head_dim;
  const Shape shape = {rows, cols}, qkv_shape = {rows, 3 * cols}, lse_shape = {c.batch, c.heads, c.seq};
  const Device gpu = Device::CUDA(0);
  // bf16 inputs, q | k | v packed as the fused projection writes them; the reference
  // computes in f64 on exactly these values.
  Tensor qkv = ops::Cast(RandomTensor(qkv_shape, seed), DType::kBF16);
  Tensor dout = ops::Cast(RandomTensor(shape, seed + 3), DType::kBF16);

  const ops::AttentionMask cpu_mask = MaskOn(c, Device::CPU());
  const Tensor qkv64 = ops::Cast(qkv, DType::kF64), dout64 = ops::Cast(dout, DType::kF64);
  Tensor out64 = Tensor::Empty(shape, DType::kF64), lse64 = Tensor::Empty(lse_shape, DType::kF64);
  ops::AttentionForward(qkv64, c.seq, c.heads, cpu_mask, &out64, &lse64);
  Tensor dqkv64 = Tensor::Empty(qkv_shape, DType::kF64);
  ops::AttentionBackward(dout64, qkv64, out64, lse64, c.seq, c.heads, cpu_mask, &dqkv64);

  const ops::AttentionMask gpu_mask = MaskOn(c, gpu);
  const Tensor qkvg = qkv.To(gpu), doutg = dout.To(gpu);
  Tensor out = Poisoned(shape, DType::kBF16), lse = Poisoned(lse_shape, DType::kF32);
  ops::AttentionForward(qkvg, c.seq, c.heads, gpu_mask, &out, &lse);
  Tensor dqkv = Poisoned(qkv_shape, DType::kBF16);  // every element of all three blocks must be written
  ops::AttentionBackward(doutg, qkvg, out, lse, c.seq, c.heads, gpu_mask, &dqkv);

  ExpectClose(out.ToDoubles(), out64.ToDoubles(), 1e-2, 5e-3, "out");
  {
    const auto got = lse.ToDoubles(), ref = lse64.ToDoubles();
    double max_err = 0;
    for (size_t i = 0; i < ref.size(); ++i) max_err = std::max(max_err, std::fabs(got[i] - ref[i]));
    EXPECT_LE(max_err, 1e-4) << "lse";  // NaN makes this fail too
  }
  const std::vector<double> gdqkv = dqkv.ToDoubles(), ref = dqkv64.ToDoubles();
  const std::vector<double> gdk = Block(gdqkv, rows, cols, 1), gdv = Block(gdqkv, rows, cols, 2);
  ExpectClose(Block(gdqkv, rows, cols, 0), Block(ref, rows, cols, 0), 2e-2, 1e-2, "dq");
  ExpectClose(gdk, Block(ref, rows, cols, 1), 2e-2, 1e-2, "dk");
  ExpectClose(gdv, Block(ref, rows, cols, 2), 2e-2, 1e-2, "dv");

  // Padding keys are seen by no query: their gradients are exactly zero.
  for (size_t b = 0; b < c.lengths.size(); ++b)
    for (int64_t j = c.lengths[b]; j < c.seq; ++j)
      for (int64_t e = 0; e < cols; ++e) {
        const int64_t i = (static_cast<int64_t>(b) * c.seq + j) * cols + e;
        ASSERT_EQ(gdk[i], 0.0) << "dk of padding key " << j << " of example " << b;
        ASSERT_EQ(gdv[i], 0.0) << "dv of padding key " << j << " of example " << b;
      }

  // Deterministic: a second backward gives the same bits (no atomics anywhere).
  Tensor dqkv2 = Poisoned(qkv_shape, DType::kBF16);
  ops::AttentionBackward(doutg, qkvg, out, lse, c.seq, c.heads, gpu_mask, &dqkv2);
  EXPECT_TRUE(dqkv2.ToDoubles() == gdqkv) << "d_qkv differs between two runs";
}

TEST(GpuAttention, CausalHeadDim64) {
  BATON_REQUIRE_GPU();
  CheckAgainstCpu(Causal(1024, 64), 700);
  CheckAgainstCpu(Causal(77, 64), 710);
}

TEST(GpuAttention, CausalHeadDim128) {
  BATON_REQUIRE_GPU();
  CheckAgainstCpu(Causal(1024, 128), 720);
  CheckAgainstCpu(Causal(77, 128), 730);
}

TEST(GpuAttention, Bidirectional) {
  BATON_REQUIRE_GPU();
  CheckAgainstCpu(Bidirectional(77, 64), 740);
  CheckAgainstCpu(Bidirectional(1024, 128), 750);
}

TEST(GpuAttention, UniLmWithPadding) {
  BATON_REQUIRE_GPU();
  CheckAgainstCpu(UniLm(1024, 64), 760);
  CheckAgainstCpu(UniLm(77, 64), 770);
  CheckAgainstCpu(UniLm(77, 128), 780);
}

TEST(GpuAttention, HeadDim32) {
  BATON_REQUIRE_GPU();
  CheckAgainstCpu(Causal(77, 32), 790);
  CheckAgainstCpu(UniLm(100, 32), 800);
}

TEST(GpuAttention, TinyAndOddShapes) {
  BATON_REQUIRE_GPU();
  CheckAgainstCpu(MakeCase("three tokens", 3, 3, 2, 64), 810);  // far less than one tile
  CheckAgainstCpu(MakeCase("prefix scalar", 1, 130, 5, 128, 40), 820);
}

}  // namespace
}  // namespace baton
