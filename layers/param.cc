#include "layers/param.h"

#include "layers/ops.h"

namespace baton {

Param::Param(std::string n, Tensor v) : name(std::move(n)), value(std::move(v)), compute(value) {
  MemoryScope scope(MemoryCategory::kGradients);
  grad = Tensor::Zeros(value.shape(), value.dtype(), value.device());
}

Param::Param(std::string n, const Shape& shape, DType compute_dtype, Device device) : name(std::move(n)) {
  const DType master = ops::AccumulationType(compute_dtype);
  {
    MemoryScope scope(master == compute_dtype ? MemoryCategory::kWeights : MemoryCategory::kMaster);
    value = Tensor::Zeros(shape, master, device);
  }
  {
    MemoryScope scope(MemoryCategory::kGradients);
    grad = Tensor::Zeros(shape, master, device);
  }
  if (master == compute_dtype) {
    compute = value;
  } else {
    MemoryScope scope(MemoryCategory::kWeights);
    compute = Tensor::Zeros(shape, compute_dtype, device);
  }
}

void Param::RefreshCompute() {
  if (has_separate_compute()) ops::Convert(value, &compute);
}

}  // namespace baton
