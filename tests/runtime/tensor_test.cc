#include "runtime/tensor.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::FromVector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor rows = t.Rows(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 2}));
  EXPECT_EQ(rows.data<float>()[0], 3.0f);
  rows.data<float>()[0] = 30.0f;
  EXPECT_EQ(t.data<float>()[2], 30.0f);
  Tensor flat = t.Reshape({6});
  EXPECT_EQ(flat.data<float>()[5], 6.0f);
  Tensor copy = t.Clone();
  copy.data<float>()[0] = -1;
  EXPECT_EQ(t.data<float>()[0], 1.0f);
}

TEST(Tensor, AllocatorCountsBytes) {
  Allocator& a = AllocatorFor(Device::CPU());
  int64_t before = a.Stats().current_bytes;
  {
    Tensor t = Tensor::Zeros({1000}, DType::kF64);
    EXPECT_EQ(a.Stats().current_bytes - before, 8000);
    EXPECT_GE(a.Stats().peak_bytes, before + 8000);
  }
  EXPECT_EQ(a.Stats().current_bytes, before);
}

TEST(Tensor, WrongDtypeAccessDies) {
  Tensor t = Tensor::Zeros({2}, DType::kF32);
  EXPECT_DEATH(t.data<double>(), "tensor is f32");
}

}  // namespace
}  // namespace baton
