// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). A draw is
// a pure function of (seed, stream, index), so the numbers a tensor element
// or a data sample gets do not depend on how work is split across ranks or
// threads: same seed, same numbers, whatever the split.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace baton {

// One Philox4x32-10 block: 4 x 32 random bits for a 64-bit key and 128-bit counter.
std::array<uint32_t, 4> PhiloxBlock(uint64_t key, uint64_t counter_hi, uint64_t counter_lo);

// A stable 64-bit id for a name (FNV-1a), used to give each parameter its own stream.
uint64_t StreamId(const std::string& name);

// Stateless draws for element `index` of stream `stream`.
double UniformAt(uint64_t seed, uint64_t stream, uint64_t index);  // in (0, 1)
double NormalAt(uint64_t seed, uint64_t stream, uint64_t index);   // N(0, 1)
uint64_t BitsAt(uint64_t seed, uint64_t stream, uint64_t index);   // 64 random bits

// A sequential view of one stream; its whole state is `position`, so it can be
// saved and restored exactly.
class RandomStream {
 public:
  RandomStream(uint64_t seed, uint64_t stream, uint64_t position = 0)
      : seed_(seed), stream_(stream), position_(position) {}
  double Uniform() { return UniformAt(seed_, stream_, position_++); }
  double Normal() { return NormalAt(seed_, stream_, position_++); }
  uint64_t Bits() { return BitsAt(seed_, stream_, position_++); }
  // Uniform integer in [0, n), n > 0 (rejection sampling, no modulo bias).
  uint64_t Below(uint64_t n);
  uint64_t position() const { return position_; }

 private:
  uint64_t seed_, stream_, position_;
};

}  // namespace baton
