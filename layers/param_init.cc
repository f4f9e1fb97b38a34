#include "layers/param_init.h"

#include "runtime/rng.h"

namespace baton {
namespace {
template <typename T>
void Fill(const std::string& name, Tensor* host, uint64_t seed, double std, bool random, double value) {
  T* v = host->data<T>();
  const uint64_t stream = StreamId(name);
  // Each value is a pure function of (seed, name, index): any thread count gives the same bits.
  const int64_t n = host->numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    v[i] = static_cast<T>(random ? std * NormalAt(seed, stream, static_cast<uint64_t>(i)) : value);
}

// Values are drawn on the host (the same numbers whatever the device), then
// copied to the parameter's device, and the working copy is refreshed.
void Dispatch(Param* p, uint64_t seed, double std, bool random, double value) {
  const DType dt = p->value.dtype();
  BATON_CHECK(dt == DType::kF32 || dt == DType::kF64, "cannot initialise " << p->name << " of " << p->value.Describe());
  Tensor host = p->value.device().is_cpu() ? p->value : Tensor::Empty(p->value.shape(), dt);
  if (dt == DType::kF64) Fill<double>(p->name, &host, seed, std, random, value);
  else Fill<float>(p->name, &host, seed, std, random, value);
  if (!p->value.device().is_cpu()) p->value.CopyFrom(host);
  p->RefreshCompute();
}
}  // namespace

void InitNormal(Param* p, uint64_t seed, double std) { Dispatch(p, seed, std, true, 0); }
void InitConstant(Param* p, double value) { Dispatch(p, 0, 0, false, value); }

}  // namespace baton
