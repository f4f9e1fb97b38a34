#include "runtime/rng.h"

#include <cmath>

namespace baton {

std::array<uint32_t, 4> PhiloxBlock(uint64_t key, uint64_t counter_hi, uint64_t counter_lo) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c[4] = {static_cast<uint32_t>(counter_lo), static_cast<uint32_t>(counter_lo >> 32),
                   static_cast<uint32_t>(counter_hi), static_cast<uint32_t>(counter_hi >> 32)};
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
    uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    uint32_t n0 = hi1 ^ c[1] ^ k0, n1 = lo1, n2 = hi0 ^ c[3] ^ k1, n3 = lo0;
    c[0] = n0; c[1] = n1; c[2] = n2; c[3] = n3;
    k0 += kW0;
    k1 += kW1;
  }
  return {c[0], c[1], c[2], c[3]};
}

uint64_t StreamId(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

namespace {
// 53 random bits to a double strictly inside (0, 1).
double ToUnit(uint32_t hi, uint32_t lo) {
  uint64_t bits = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;
  return (static_cast<double>(bits) + 0.5) * (1.0 / 9007199254740992.0);
}
}  // namespace

double UniformAt(uint64_t seed, uint64_t stream, uint64_t index) {
  auto b = PhiloxBlock(seed, stream, index);
  return ToUnit(b[0], b[1]);
}

double NormalAt(uint64_t seed, uint64_t stream, uint64_t index) {
  auto b = PhiloxBlock(seed, stream, index);
  double u1 = ToUnit(b[0], b[1]), u2 = ToUnit(b[2], b[3]);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

uint64_t BitsAt(uint64_t seed, uint64_t stream, uint64_t index) {
  auto b = PhiloxBlock(seed, stream, index);
  return (static_cast<uint64_t>(b[0]) << 32) | b[1];
}

uint64_t RandomStream::Below(uint64_t n) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  for (;;) {
    uint64_t x = Bits();
    if (x < limit) return x % n;
  }
}

}  // namespace baton
