// A dense, contiguous, row-major tensor: shape, dtype, device and a shared
// buffer. Views (Reshape, Rows) share the buffer. Tensors carry no autograd:
// layers write their own backward passes.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/status.h"

namespace baton {

using Shape = std::vector<int64_t>;

std::string ShapeString(const Shape& shape);
int64_t NumElements(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;  // an empty (undefined) tensor

  static Tensor Empty(const Shape& shape, DType dtype, Device device = Device::CPU());
  static Tensor Zeros(const Shape& shape, DType dtype, Device device = Device::CPU());
  // Host tensor holding a copy of `values` (tests, small constants).
  template <typename T>
  static Tensor FromVector(const Shape& shape, const std::vector<T>& values);

  bool defined() const { return buffer_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return NumElements(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * SizeOf(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

  void* raw() const { return static_cast<char*>(buffer_->data()) + offset_; }
  template <typename T>
  T* data() const {
    BATON_CHECK(DTypeOf<T>() == dtype_, "tensor is " << DTypeName(dtype_) << ", asked for " << DTypeName(DTypeOf<T>()));
    BATON_CHECK(device_.is_cpu(), "host access to a " << device_.ToString() << " tensor");
    return static_cast<T*>(raw());
  }

  // Same bytes, another shape with the same element count.
  Tensor Reshape(const Shape& shape) const;
  // Rows [begin, end) along the first dimension, as a view.
  Tensor Rows(int64_t begin, int64_t end) const;
  // A new tensor with the same contents.
  Tensor Clone() const;
  // A copy on another device (this tensor itself when it is already there).
  Tensor To(Device device) const;
  void SetZero();
  // Copies `src` (same shape and dtype) into this tensor.
  void CopyFrom(const Tensor& src);
  // Host copy as double, whatever the dtype and device (tests, checkpoints, reports).
  std::vector<double> ToDoubles() const;
  std::string Describe() const;  // "f32[4, 128] on cpu"

 private:
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;  // in bytes
  Shape shape_;
  DType dtype_ = DType::kF32;
  Device device_;
};

template <typename T>
Tensor Tensor::FromVector(const Shape& shape, const std::vector<T>& values) {
  BATON_CHECK(NumElements(shape) == static_cast<int64_t>(values.size()),
              "shape " << ShapeString(shape) << " needs " << NumElements(shape) << " values, got " << values.size());
  Tensor t = Empty(shape, DTypeOf<T>());
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

}  // namespace baton
