#include "checkpoint/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace baton {
namespace {

// Bit-at-a-time reference, independent of the tables.
uint32_t BitwiseCrc32c(const unsigned char* p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
  }
  return ~crc;
}

TEST(Crc32c, CheckValue) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string_view("123456789")), 0xE3069283u);
}

TEST(Crc32c, EmptyIsZero) {
  EXPECT_EQ(Crc32c(nullptr, 0), 0u);
  EXPECT_EQ(Crc32cExtend(0xE3069283u, nullptr, 0), 0xE3069283u);
}

TEST(Crc32c, Rfc3720Vectors) {
  unsigned char buf[32];
  std::memset(buf, 0x00, sizeof(buf));
  EXPECT_EQ(Crc32c(buf, sizeof(buf)), 0x8A9136AAu);
  std::memset(buf, 0xFF, sizeof(buf));
  EXPECT_EQ(Crc32c(buf, sizeof(buf)), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(Crc32c(buf, sizeof(buf)), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(31 - i);
  EXPECT_EQ(Crc32c(buf, sizeof(buf)), 0x113FDB5Cu);
}

TEST(Crc32c, MatchesBitwiseReferenceAtEveryLengthAndAlignment) {
  std::mt19937 rng(1234);
  std::vector<unsigned char> data(600);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t n = 0; start + n <= 300; ++n) {
      ASSERT_EQ(Crc32c(data.data() + start, n), BitwiseCrc32c(data.data() + start, n))
          << "start " << start << " length " << n;
    }
  }
}

TEST(Crc32c, IncrementalEqualsOneShotOnRandomSplits) {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    const size_t n = rng() % 5000;
    std::vector<unsigned char> data(n);
    for (auto& b : data) b = static_cast<unsigned char>(rng());
    const uint32_t one_shot = Crc32c(data.data(), n);
    // Split into a random number of random-length pieces.
    uint32_t crc = 0;
    size_t pos = 0;
    while (pos < n) {
      const size_t piece = std::min<size_t>(n - pos, rng() % 97);
      crc = Crc32cExtend(crc, data.data() + pos, piece);
      pos += piece;
    }
    ASSERT_EQ(crc, one_shot) << "trial " << trial << " length " << n;
  }
}

}  // namespace
}  // namespace baton
