#include "data/feistel_permutation.h"

#include "runtime/rng.h"
#include "runtime/status.h"

namespace baton {

FeistelPermutation::FeistelPermutation(uint64_t n, uint64_t seed, uint64_t stream) : n_(n) {
  BATON_CHECK(n > 0, "empty permutation");
  // Domain 2^(2 * half_bits) >= n and < 4n (for n > 1), so cycle walking
  // takes fewer than 4 steps on average.
  half_bits_ = 1;
  while (half_bits_ < 32 && (uint64_t{1} << (2 * half_bits_)) < n) ++half_bits_;
  half_mask_ = half_bits_ == 32 ? 0xFFFFFFFFull : (uint64_t{1} << half_bits_) - 1;
  for (int r = 0; r < kRounds; ++r) round_keys_[r] = BitsAt(seed, stream, r);
}

uint64_t FeistelPermutation::Encrypt(uint64_t x) const {
  uint64_t left = x >> half_bits_, right = x & half_mask_;
  for (int r = 0; r < kRounds; ++r) {
    const uint64_t mixed = left ^ (BitsAt(round_keys_[r], /*stream=*/r, right) & half_mask_);
    left = right;
    right = mixed;
  }
  return (left << half_bits_) | right;
}

uint64_t FeistelPermutation::operator()(uint64_t i) const {
  BATON_CHECK(i < n_, "index " << i << " of a permutation of " << n_);
  // Encrypt is a bijection on the power-of-two domain, so following it from
  // i must come back into [0, n) (at the latest at i itself).
  uint64_t y = Encrypt(i);
  while (y >= n_) y = Encrypt(y);
  return y;
}

}  // namespace baton
