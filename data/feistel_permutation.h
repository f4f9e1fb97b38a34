// A pseudo-random permutation of [0, n) that is computed, not stored: a
// 4-round Feistel network over the smallest even-bit power of two >= n,
// with cycle walking to stay inside [0, n). It needs O(1) memory however
// large n is (a shuffled index of billions of windows would need gigabytes),
// and each value is a pure function of (n, seed, stream, i).
#pragma once

#include <cstdint>

namespace baton {

class FeistelPermutation {
 public:
  // n > 0. The round keys come from runtime/rng.h keyed by (seed, stream).
  FeistelPermutation(uint64_t n, uint64_t seed, uint64_t stream);

  uint64_t size() const { return n_; }
  // The image of i (< size()); distinct i give distinct images.
  uint64_t operator()(uint64_t i) const;

 private:
  static constexpr int kRounds = 4;
  uint64_t Encrypt(uint64_t x) const;

  uint64_t n_;
  int half_bits_;
  uint64_t half_mask_;
  uint64_t round_keys_[kRounds];
};

}  // namespace baton
