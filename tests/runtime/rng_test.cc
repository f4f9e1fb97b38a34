#include "runtime/rng.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

namespace baton {
namespace {

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
TEST(Philox, KnownAnswers) {
  auto a = PhiloxBlock(0, 0, 0);
  EXPECT_EQ(a[0], 0x6627e8d5u);
  EXPECT_EQ(a[1], 0xe169c58du);
  EXPECT_EQ(a[2], 0xbc57ac4cu);
  EXPECT_EQ(a[3], 0x9b00dbd8u);
  auto b = PhiloxBlock(~0ull, ~0ull, ~0ull);
  EXPECT_EQ(b[0], 0x408f276du);
  EXPECT_EQ(b[1], 0x41c83b0eu);
  EXPECT_EQ(b[2], 0xa20bc7c6u);
  EXPECT_EQ(b[3], 0x6d5451fdu);
  // counter {243f6a88, 85a308d3, 13198a2e, 03707344}, key {a4093822, 299f31d0}
  auto c = PhiloxBlock(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
  EXPECT_EQ(c[0], 0xd16cfe09u);
  EXPECT_EQ(c[1], 0x94fdccebu);
  EXPECT_EQ(c[2], 0x5001e420u);
  EXPECT_EQ(c[3], 0x24126ea1u);
}

TEST(Philox, DrawsDependOnlyOnIndexNotOnOrder) {
  RandomStream forward(7, 3);
  std::vector<double> seq;
  for (int i = 0; i < 100; ++i) seq.push_back(forward.Normal());
  for (int i = 99; i >= 0; --i) EXPECT_EQ(NormalAt(7, 3, i), seq[i]);
  RandomStream resumed(7, 3, 50);
  EXPECT_EQ(resumed.Normal(), seq[50]);
}

TEST(Philox, NormalMomentsAndUniformRange) {
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    double x = NormalAt(11, 5, i);
    sum += x;
    sum2 += x * x;
    double u = UniformAt(11, 6, i);
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum2 / n, 1.0, 0.02);
}

TEST(Philox, StreamsAndSeedsDiffer) {
  EXPECT_NE(BitsAt(1, 0, 0), BitsAt(2, 0, 0));
  EXPECT_NE(BitsAt(1, StreamId("a"), 0), BitsAt(1, StreamId("b"), 0));
  RandomStream s(3, 4);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(s.Below(10));
  EXPECT_EQ(seen.size(), 10u);
}

}  // namespace
}  // namespace baton
