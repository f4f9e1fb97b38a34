// Schedule values at chosen steps against numbers worked out by hand.
#include "optim/lr_schedule.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

LrScheduleOptions Make(LrScheduleKind kind, double lr, int64_t warmup, double ratio, int64_t total) {
  LrScheduleOptions o;
  o.kind = kind;
  o.lr = lr;
  o.warmup_steps = warmup;
  o.min_lr_ratio = ratio;
  o.total_steps = total;
  return o;
}

TEST(LrSchedule, RelativeStepIsThePapersRho) {
  LrScheduleOptions o;  // defaults: relative step, lr = 1e-2
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 1), 1e-2);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 10000), 1e-2);    // 1/sqrt(1e4) = 1e-2
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 40000), 5e-3);    // 1/200
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 1000000), 1e-3);  // 1/1000
  o.warmup_steps = 100;
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 50), 5e-3);       // half-way through warm-up
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 40000), 5e-3);
}

TEST(LrSchedule, ConstantWithWarmup) {
  auto o = Make(LrScheduleKind::kConstant, 3e-4, 10, 0.1, 1);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 1), 3e-5);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 5), 1.5e-4);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 10), 3e-4);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 1000), 3e-4);
}

TEST(LrSchedule, LinearDecay) {
  auto o = Make(LrScheduleKind::kLinear, 1e-3, 10, 0.1, 110);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 5), 5e-4);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 10), 1e-3);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 60), 5.5e-4);  // 1e-3 * (0.1 + 0.9 * 0.5)
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 110), 1e-4);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 500), 1e-4);   // held after total_steps
}

TEST(LrSchedule, CosineDecay) {
  auto o = Make(LrScheduleKind::kCosine, 1e-3, 0, 0.0, 100);
  EXPECT_NEAR(LearningRateAt(o, 25), 8.5355339059e-4, 1e-13);  // 0.5 (1 + cos(pi/4))
  EXPECT_NEAR(LearningRateAt(o, 50), 5e-4, 1e-15);
  EXPECT_NEAR(LearningRateAt(o, 100), 0.0, 1e-15);
  o.min_lr_ratio = 0.1;
  EXPECT_NEAR(LearningRateAt(o, 25), 8.681980515e-4, 1e-13);  // 0.1 + 0.9 * 0.853553
  EXPECT_NEAR(LearningRateAt(o, 100), 1e-4, 1e-15);
  o.warmup_steps = 20;
  o.total_steps = 120;
  EXPECT_NEAR(LearningRateAt(o, 10), 5e-4, 1e-15);
  EXPECT_NEAR(LearningRateAt(o, 20), 1e-3, 1e-15);
  EXPECT_NEAR(LearningRateAt(o, 70), 5.5e-4, 1e-15);
}

TEST(LrSchedule, Validate) {
  EXPECT_TRUE(ValidateLrSchedule(LrScheduleOptions{}).ok());
  auto o = Make(LrScheduleKind::kCosine, 1e-3, 100, 0.1, 50);
  Status st = ValidateLrSchedule(o);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("train.steps"), std::string::npos) << st.message();
  o = Make(LrScheduleKind::kLinear, 1e-3, 0, 1.5, 50);
  EXPECT_NE(ValidateLrSchedule(o).message().find("min_lr_ratio"), std::string::npos);
  o = Make(LrScheduleKind::kConstant, -1, 0, 0.1, 1);
  EXPECT_NE(ValidateLrSchedule(o).message().find("lr"), std::string::npos);
}

}  // namespace
}  // namespace baton
