#include "layers/param_init.h"

#include "runtime/rng.h"

namespace baton {
namespace {
template <typename T>
void Fill(Param* p, uint64_t seed, double std, bool random, double value) {
  T* v = p->value.data<T>();
  const uint64_t stream = StreamId(p->name);
  for (int64_t i = 0; i < p->value.numel(); ++i)
    v[i] = static_cast<T>(random ? std * NormalAt(seed, stream, static_cast<uint64_t>(i)) : value);
}

void Dispatch(Param* p, uint64_t seed, double std, bool random, double value) {
  BATON_CHECK(p->value.device().is_cpu(), "parameters are initialised on the host, then copied");
  if (p->value.dtype() == DType::kF64) return Fill<double>(p, seed, std, random, value);
  BATON_CHECK(p->value.dtype() == DType::kF32, "cannot initialise " << p->name << " of " << p->value.Describe());
  Fill<float>(p, seed, std, random, value);
}
}  // namespace

void InitNormal(Param* p, uint64_t seed, double std) { Dispatch(p, seed, std, true, 0); }
void InitConstant(Param* p, double value) { Dispatch(p, 0, 0, false, value); }

}  // namespace baton
