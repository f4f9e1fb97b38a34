#include "runtime/tensor.h"

#include <cstring>

namespace baton {

std::string ShapeString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor Tensor::Empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) BATON_CHECK(d >= 0, "negative dimension in " << ShapeString(shape));
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.buffer_ = std::make_shared<Buffer>(device, static_cast<size_t>(NumElements(shape)) * SizeOf(dtype));
  return t;
}

Tensor Tensor::Zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = Empty(shape, dtype, device);
  t.SetZero();
  return t;
}

Tensor Tensor::Reshape(const Shape& shape) const {
  BATON_CHECK(NumElements(shape) == numel(), "cannot reshape " << ShapeString(shape_) << " to " << ShapeString(shape));
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::Rows(int64_t begin, int64_t end) const {
  BATON_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0],
              "rows [" << begin << ", " << end << ") of " << ShapeString(shape_));
  Tensor t = *this;
  int64_t row = shape_[0] == 0 ? 0 : numel() / shape_[0];
  t.offset_ += static_cast<size_t>(begin * row) * SizeOf(dtype_);
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t = Empty(shape_, dtype_, device_);
  t.CopyFrom(*this);
  return t;
}

Tensor Tensor::To(Device device) const {
  if (device == device_) return *this;
  Tensor t = Empty(shape_, dtype_, device);
  t.CopyFrom(*this);
  return t;
}

void Tensor::SetZero() { ZeroBytes(raw(), device_, nbytes()); }

void Tensor::CopyFrom(const Tensor& src) {
  BATON_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy " << src.Describe() << " into " << Describe());
  CopyBytes(raw(), device_, src.raw(), src.device_, nbytes());
}

std::vector<double> Tensor::ToDoubles() const {
  if (!device_.is_cpu()) return To(Device::CPU()).ToDoubles();
  std::vector<double> out(static_cast<size_t>(numel()));
  switch (dtype_) {
    case DType::kF32: { const float* p = data<float>(); for (size_t i = 0; i < out.size(); ++i) out[i] = p[i]; break; }
    case DType::kF64: { const double* p = data<double>(); for (size_t i = 0; i < out.size(); ++i) out[i] = p[i]; break; }
    case DType::kI32: { const int32_t* p = data<int32_t>(); for (size_t i = 0; i < out.size(); ++i) out[i] = p[i]; break; }
    case DType::kU16: { const uint16_t* p = data<uint16_t>(); for (size_t i = 0; i < out.size(); ++i) out[i] = p[i]; break; }
    case DType::kBF16: {
      const uint16_t* p = static_cast<const uint16_t*>(raw());
      for (size_t i = 0; i < out.size(); ++i) out[i] = Bf16ToFloat(p[i]);
      break;
    }
  }
  return out;
}

std::string Tensor::Describe() const {
  if (!defined()) return "undefined tensor";
  return std::string(DTypeName(dtype_)) + ShapeString(shape_) + " on " + device_.ToString();
}

}  // namespace baton
