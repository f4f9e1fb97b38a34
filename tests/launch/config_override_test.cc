// --set overrides: every value kind, nested paths, and the error messages.
#include "launch/config_override.h"

#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>

namespace baton {
namespace {

std::string Error(RunConfig* config, const std::string& assignment) {
  Status s = ApplyOverride(config, assignment);
  EXPECT_FALSE(s.ok()) << assignment;
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  return s.message();
}

TEST(ConfigOverrideTest, SetsEveryScalarKind) {
  RunConfig config;
  ASSERT_TRUE(ApplyOverride(&config, "model.hidden=256").ok());                       // int32
  ASSERT_TRUE(ApplyOverride(&config, "train.steps=10000000000").ok());                // int64
  ASSERT_TRUE(ApplyOverride(&config, "train.seed=18446744073709551615").ok());        // uint64
  ASSERT_TRUE(ApplyOverride(&config, "optim.lr=3e-4").ok());                          // double
  ASSERT_TRUE(ApplyOverride(&config, "optim.scale_parameter=false").ok());            // bool
  ASSERT_TRUE(ApplyOverride(&config, "data.train=a/*.bin").ok());                     // string
  ASSERT_TRUE(ApplyOverride(&config, "optim.lr_schedule=COSINE").ok());               // enum
  ASSERT_TRUE(ApplyOverride(&config, "parallel.recompute=selective").ok());           // enum, any case
  EXPECT_EQ(config.model().hidden(), 256);
  EXPECT_EQ(config.train().steps(), 10000000000LL);
  EXPECT_EQ(config.train().seed(), 18446744073709551615ULL);
  EXPECT_DOUBLE_EQ(config.optim().lr(), 3e-4);
  EXPECT_TRUE(config.optim().has_scale_parameter());
  EXPECT_FALSE(config.optim().scale_parameter());
  EXPECT_EQ(config.data().train(), "a/*.bin");
  EXPECT_EQ(config.optim().lr_schedule(), OptimConfig::COSINE);
  EXPECT_EQ(config.parallel().recompute(), ParallelConfig::SELECTIVE);
}

TEST(ConfigOverrideTest, BoolForms) {
  RunConfig config;
  ASSERT_TRUE(ApplyOverride(&config, "optim.scale_parameter=0").ok());
  EXPECT_FALSE(config.optim().scale_parameter());
  ASSERT_TRUE(ApplyOverride(&config, "optim.scale_parameter=1").ok());
  EXPECT_TRUE(config.optim().scale_parameter());
  ASSERT_TRUE(ApplyOverride(&config, "optim.scale_parameter=false").ok());
  ASSERT_TRUE(ApplyOverride(&config, "optim.scale_parameter=true").ok());
  EXPECT_TRUE(config.optim().scale_parameter());
  EXPECT_EQ(Error(&config, "optim.scale_parameter=yes"),
            "--set optim.scale_parameter=yes: optim.scale_parameter is a bool (true or false), got \"yes\"");
}

TEST(ConfigOverrideTest, StringKeepsEqualsSignsAndSpaces) {
  RunConfig config;
  ASSERT_TRUE(ApplyOverride(&config, "data.val=dir with space/a=b*.bin").ok());
  EXPECT_EQ(config.data().val(), "dir with space/a=b*.bin");
  ASSERT_TRUE(ApplyOverride(&config, "data.val=").ok());
  EXPECT_EQ(config.data().val(), "");
}

TEST(ConfigOverrideTest, BadIntegers) {
  RunConfig config;
  EXPECT_EQ(Error(&config, "model.hidden=abc"), "--set model.hidden=abc: model.hidden is an int32, got \"abc\"");
  EXPECT_EQ(Error(&config, "model.hidden=12x"), "--set model.hidden=12x: model.hidden is an int32, got \"12x\"");
  EXPECT_EQ(Error(&config, "model.hidden=1.5"), "--set model.hidden=1.5: model.hidden is an int32, got \"1.5\"");
  EXPECT_EQ(Error(&config, "model.hidden="), "--set model.hidden=: model.hidden is an int32, got \"\"");
  EXPECT_EQ(Error(&config, "model.hidden=3000000000"),
            "--set model.hidden=3000000000: model.hidden is an int32, got \"3000000000\" (out of range)");
  EXPECT_NE(Error(&config, "train.steps=99999999999999999999").find("train.steps is an int64"), std::string::npos);
  EXPECT_EQ(Error(&config, "train.seed=-1"), "--set train.seed=-1: train.seed is a uint64, got \"-1\" (out of range)");
  EXPECT_EQ(config.model().hidden(), 768);  // failed overrides change nothing
}

TEST(ConfigOverrideTest, BadDoubleAndEnum) {
  RunConfig config;
  EXPECT_EQ(Error(&config, "optim.lr=fast"), "--set optim.lr=fast: optim.lr is a double, got \"fast\"");
  EXPECT_EQ(Error(&config, "optim.lr=1e999"), "--set optim.lr=1e999: optim.lr is a double, got \"1e999\"");
  EXPECT_EQ(Error(&config, "optim.lr_schedule=COSIN"),
            "--set optim.lr_schedule=COSIN: optim.lr_schedule is one of RELATIVE_STEP, CONSTANT, LINEAR, COSINE, "
            "got \"COSIN\"");
}

TEST(ConfigOverrideTest, UnknownPathListsFieldsAtThatLevel) {
  RunConfig config;
  const std::string nested = Error(&config, "model.hiden=3");
  EXPECT_EQ(nested.rfind("--set model.hiden=3: no field \"hiden\" in model (did you mean \"hidden\"? fields: family, layers, hidden,", 0), 0u)
      << nested;
  const std::string top = Error(&config, "modle.hidden=3");
  EXPECT_NE(top.find("no field \"modle\" in RunConfig"), std::string::npos) << top;
  EXPECT_NE(top.find("fields: model, train, data, optim, parallel, checkpoint"), std::string::npos) << top;
  const std::string far = Error(&config, "optim.zzzzzz=1");
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << far;
}

TEST(ConfigOverrideTest, MalformedAssignments) {
  RunConfig config;
  EXPECT_NE(Error(&config, "model.hidden").find("expected path.to.field=value"), std::string::npos);
  EXPECT_NE(Error(&config, "=3").find("expected path.to.field=value"), std::string::npos);
  EXPECT_NE(Error(&config, "model..hidden=3").find("empty field name"), std::string::npos);
  const std::string message_leaf = Error(&config, "model=3");
  EXPECT_NE(message_leaf.find("model is a message; set one of its fields (model.family, model.layers"),
            std::string::npos)
      << message_leaf;
  const std::string through_scalar = Error(&config, "model.hidden.x=3");
  EXPECT_NE(through_scalar.find("model.hidden is an int32, it has no field \"x\""), std::string::npos)
      << through_scalar;
}

// RunConfig has no list fields yet; descriptor.proto's FileDescriptorProto
// stands in to pin down how lists behave.
TEST(ConfigOverrideTest, RepeatedFieldIsReplacedWhole) {
  google::protobuf::FileDescriptorProto file;
  file.add_public_dependency(9);
  ASSERT_TRUE(ApplyOverrideToMessage(&file, "public_dependency=1,2,3").ok());
  ASSERT_EQ(file.public_dependency_size(), 3);
  EXPECT_EQ(file.public_dependency(0), 1);
  EXPECT_EQ(file.public_dependency(2), 3);
  ASSERT_TRUE(ApplyOverrideToMessage(&file, "dependency=a.proto,b.proto").ok());
  ASSERT_EQ(file.dependency_size(), 2);
  EXPECT_EQ(file.dependency(1), "b.proto");
  ASSERT_TRUE(ApplyOverrideToMessage(&file, "public_dependency=").ok());
  EXPECT_EQ(file.public_dependency_size(), 0);
  ASSERT_TRUE(ApplyOverrideToMessage(&file, "options.java_package=x.y").ok());
  EXPECT_EQ(file.options().java_package(), "x.y");

  Status bad = ApplyOverrideToMessage(&file, "public_dependency=1,x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("public_dependency is a comma-separated list of int32, got \"x\""), std::string::npos)
      << bad.message();
  Status messages = ApplyOverrideToMessage(&file, "message_type=1");
  ASSERT_FALSE(messages.ok());
  EXPECT_NE(messages.message().find("--set cannot write"), std::string::npos) << messages.message();
}

}  // namespace
}  // namespace baton
