// LoadRunConfig end to end: files on disk, parse errors with positions,
// overrides, and validation naming the file.
#include "launch/config_loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace baton {
namespace {

// A valid config needs data globs; everything else has usable defaults.
constexpr const char* kValidText = R"(
model {
  layers: 4
  hidden: 256
  heads: 8
  max_positions: 512
}
train { seq_len: 256 steps: 50 }
data { train: "data/tiny/*_train_*.bin" val: "data/tiny/*_val_*.bin" }
optim { lr: 0.005 lr_schedule: COSINE warmup_steps: 10 }
)";

constexpr const char* kData = "data { train: \"t/*.bin\" val: \"v/*.bin\" }\n";

class ConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "baton_config_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
};

TEST_F(ConfigLoaderTest, ValidFileLoadsAndValuesComeThrough) {
  const std::string path = Write("ok.pbtxt", kValidText);
  Result<RunConfig> config = LoadRunConfig(path, {});
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->model().layers(), 4);
  EXPECT_EQ(config->model().hidden(), 256);
  EXPECT_EQ(config->train().seq_len(), 256);
  EXPECT_EQ(config->data().train(), "data/tiny/*_train_*.bin");
  EXPECT_DOUBLE_EQ(config->optim().lr(), 0.005);
  EXPECT_EQ(config->optim().lr_schedule(), OptimConfig::COSINE);
  // Unnamed fields keep their proto2 defaults and stay unset.
  EXPECT_EQ(config->model().vocab(), 50257);
  EXPECT_FALSE(config->model().has_vocab());
  EXPECT_DOUBLE_EQ(config->optim().eps1(), 1e-30);
}

TEST_F(ConfigLoaderTest, MissingFileSaysSo) {
  Result<RunConfig> config = LoadRunConfig(dir_ + "/absent.pbtxt", {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), Status::Code::kNotFound);
  EXPECT_NE(config.status().message().find("absent.pbtxt"), std::string::npos);
  EXPECT_NE(config.status().message().find("cannot read the config file"), std::string::npos);
}

TEST_F(ConfigLoaderTest, DirectoryIsNotAConfig) {
  Result<RunConfig> config = LoadRunConfig(dir_, {});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("is a directory"), std::string::npos);
}

TEST_F(ConfigLoaderTest, UnknownFieldNamesFileLineAndField) {
  const std::string path = Write("typo.pbtxt", "data { train: \"x\" val: \"y\" }\nmodel {\n  hiden: 256\n}\n");
  Result<RunConfig> config = LoadRunConfig(path, {});
  ASSERT_FALSE(config.ok());
  const std::string& msg = config.status().message();
  EXPECT_EQ(msg.rfind(path + ":3:3: no field \"hiden\" in model", 0), 0u) << msg;
  EXPECT_NE(msg.find("did you mean \"hidden\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("fields: family, layers, hidden"), std::string::npos) << msg;
}

TEST_F(ConfigLoaderTest, UnknownTopLevelField) {
  const std::string path = Write("top.pbtxt", "modle { layers: 2 }\n");
  Result<RunConfig> config = LoadRunConfig(path, {});
  ASSERT_FALSE(config.ok());
  const std::string& msg = config.status().message();
  EXPECT_NE(msg.find(path + ":1:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no field \"modle\" in RunConfig"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fields: model, train, data, optim, parallel, checkpoint"), std::string::npos) << msg;
}

TEST_F(ConfigLoaderTest, WrongTypeNamesPositionAndField) {
  const std::string path = Write("type.pbtxt", "model {\n  layers: 2\n  hidden: \"abc\"\n}\n");
  Result<RunConfig> config = LoadRunConfig(path, {});
  ASSERT_FALSE(config.ok());
  const std::string& msg = config.status().message();
  EXPECT_NE(msg.find(path + ":3:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Expected integer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.hidden is an int32"), std::string::npos) << msg;
}

TEST_F(ConfigLoaderTest, UnknownEnumValueListsAllowedNames) {
  const std::string path = Write("enum.pbtxt", "optim { lr_schedule: COSIN }\n");
  Result<RunConfig> config = LoadRunConfig(path, {});
  ASSERT_FALSE(config.ok());
  const std::string& msg = config.status().message();
  EXPECT_NE(msg.find(path + ":1:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("optim.lr_schedule is one of RELATIVE_STEP, CONSTANT, LINEAR, COSINE"), std::string::npos)
      << msg;
}

TEST_F(ConfigLoaderTest, SyntaxErrorKeepsParserMessageWithPosition) {
  const std::string path = Write("syntax.pbtxt", "model {\n  layers: 2\n");
  Result<RunConfig> config = LoadRunConfig(path, {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message().rfind(path + ":3:1: Expected identifier", 0), 0u) << config.status().message();
  EXPECT_NE(config.status().message().find("closing } missing"), std::string::npos) << config.status().message();
}

TEST_F(ConfigLoaderTest, RangeErrorNamesFileAndField) {
  const std::string path = Write("range.pbtxt", std::string(kData) + "optim { lr: -0.1 }\n");
  Result<RunConfig> config = LoadRunConfig(path, {});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ": optim.lr = -0.1 is below the minimum 0"), std::string::npos)
      << config.status().message();
}

TEST_F(ConfigLoaderTest, SemanticErrorNamesFile) {
  const std::string path = Write("roformer.pbtxt", std::string(kData) + "model { family: ROFORMER }\n");
  Result<RunConfig> config = LoadRunConfig(path, {});
  ASSERT_FALSE(config.ok());
  // GPT-2's 50257 ids leave no room for the [MASK] token masked LM (RoFormer's default) needs.
  EXPECT_NE(config.status().message().find(path + ": objective.mask_token = 50257 is not below model.vocab = 50257"),
            std::string::npos)
      << config.status().message();
}

// Every example config in configs/ loads and passes validation (GPU configs checked
// as CPU runs, so that a build without CUDA checks them too).
TEST(ShippedConfigs, EveryConfigLoadsAndValidates) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(BATON_SOURCE_DIR "/configs")) {
    if (entry.path().extension() != ".pbtxt") continue;
    ++n;
    Result<RunConfig> config = LoadRunConfig(entry.path().string(), {"train.device=CPU"});
    EXPECT_TRUE(config.ok()) << config.status().message();
  }
  EXPECT_GE(n, 6) << "configs/ holds the CPU demos and the GPU configs";
}

TEST_F(ConfigLoaderTest, OverridesApplyInOrder) {
  const std::string path = Write("ok.pbtxt", kValidText);
  Result<RunConfig> config =
      LoadRunConfig(path, {"model.hidden=512", "optim.lr_schedule=LINEAR", "model.hidden=384", "data.val=v/*.bin"});
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->model().hidden(), 384);
  EXPECT_EQ(config->optim().lr_schedule(), OptimConfig::LINEAR);
  EXPECT_EQ(config->data().val(), "v/*.bin");
}

TEST_F(ConfigLoaderTest, BadOverrideIsReportedAsSet) {
  const std::string path = Write("ok.pbtxt", kValidText);
  Result<RunConfig> config = LoadRunConfig(path, {"model.hidden=abc"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "--set model.hidden=abc: model.hidden is an int32, got \"abc\"");
}

TEST_F(ConfigLoaderTest, OverrideThatMakesConfigInvalid) {
  const std::string path = Write("ok.pbtxt", kValidText);
  Result<RunConfig> config = LoadRunConfig(path, {"model.heads=7"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ": model.hidden = 256 is not divisible by model.heads = 7"),
            std::string::npos)
      << config.status().message();
  Result<RunConfig> ranged = LoadRunConfig(path, {"model.layers=0"});
  ASSERT_FALSE(ranged.ok());
  EXPECT_NE(ranged.status().message().find(path + ": model.layers = 0 is below the minimum 1"), std::string::npos)
      << ranged.status().message();
}

TEST_F(ConfigLoaderTest, EmptyFileNeedsTrainingData) {
  const std::string path = Write("empty.pbtxt", "");
  Result<RunConfig> config = LoadRunConfig(path, {});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ": data.train is empty"), std::string::npos)
      << config.status().message();
  EXPECT_TRUE(LoadRunConfig(path, {"data.train=t/*.bin", "data.val=v/*.bin"}).ok());
}

}  // namespace
}  // namespace baton
