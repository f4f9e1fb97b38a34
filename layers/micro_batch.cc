#include "layers/micro_batch.h"

namespace baton {

int64_t MicroBatch::LossTargets() const {
  BATON_CHECK(targets.device().is_cpu() && targets.dtype() == DType::kI32,
              "MicroBatch::LossTargets: targets " << targets.Describe() << ", expected i32 on the host");
  const int32_t* t = targets.data<int32_t>();
  int64_t n = 0;
  for (int64_t i = 0; i < targets.numel(); ++i) n += t[i] != kIgnoreTarget;
  return n;
}

MicroBatch MicroBatch::To(Device device) const {
  MicroBatch out = *this;
  out.tokens = tokens.To(device);
  out.targets = targets.To(device);
  if (mask.prefix_lengths.defined()) out.mask.prefix_lengths = mask.prefix_lengths.To(device);
  if (mask.lengths.defined()) out.mask.lengths = mask.lengths.To(device);
  return out;
}

}  // namespace baton
