// The effective config text (run_dir/config.pbtxt) and --help-config.
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "launch/config_effective.h"
#include "launch/config_help.h"
#include "launch/config_loader.h"

namespace baton {
namespace {

namespace pb = google::protobuf;

void CollectLeafPaths(const pb::Descriptor* type, const std::string& prefix, std::vector<std::string>* paths) {
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* f = type->field(i);
    const std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    if (f->message_type() != nullptr) {
      CollectLeafPaths(f->message_type(), path, paths);
    } else {
      paths->push_back(path);
    }
  }
}

TEST(EffectiveConfigTextTest, WritesEveryFieldAndRoundTrips) {
  RunConfig config;
  config.mutable_model()->set_hidden(256);
  config.mutable_optim()->set_lr(3e-4);
  config.mutable_optim()->set_lr_schedule(OptimConfig::COSINE);
  config.mutable_data()->set_train("a/*.bin");
  // A repeated field has no default to spell out: give it values so it is written too.
  config.mutable_parallel()->add_stage_recompute(ParallelConfig::FULL);
  config.mutable_parallel()->add_stage_recompute(ParallelConfig::NONE);
  const std::string text = EffectiveConfigText(config);

  EXPECT_NE(text.find("eps1: 1e-30"), std::string::npos) << text;
  EXPECT_NE(text.find("hidden: 256"), std::string::npos) << text;
  EXPECT_NE(text.find("lr_schedule: COSINE"), std::string::npos) << text;
  EXPECT_NE(text.find("scale_parameter: true"), std::string::npos) << text;
  EXPECT_NE(text.find("val: \"\""), std::string::npos) << text;
  EXPECT_NE(text.find("checkpoint {"), std::string::npos) << text;

  Result<RunConfig> back = ParseRunConfigText(text, "config.pbtxt");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(pb::util::MessageDifferencer::Equivalent(*back, config));
  // Every leaf is present after the round trip: nothing depends on defaults.
  std::vector<std::string> paths;
  CollectLeafPaths(RunConfig::descriptor(), "", &paths);
  for (const std::string& path : paths) {
    const std::string name = path.substr(path.rfind('.') + 1);
    EXPECT_NE(text.find(name + ":"), std::string::npos) << path;
  }
  // Writing it again gives the same text: the file is a fixed point.
  EXPECT_EQ(EffectiveConfigText(*back), text);
  EXPECT_TRUE(pb::util::MessageDifferencer::Equals(*back, *ParseRunConfigText(EffectiveConfigText(*back), "again")));
}

TEST(ConfigFieldsHelpTest, MentionsEveryLeafField) {
  const std::string help = "\n" + ConfigFieldsHelp();  // every line, the first too, follows a newline
  std::vector<std::string> paths;
  CollectLeafPaths(RunConfig::descriptor(), "", &paths);
  ASSERT_GT(paths.size(), 30u);
  size_t lines = std::count(help.begin(), help.end(), '\n');
  EXPECT_EQ(lines, paths.size() + 1);
  for (const std::string& path : paths) {
    EXPECT_NE(help.find("\n" + path + " "), std::string::npos) << path << "\n" << help;
  }
}

TEST(ConfigFieldsHelpTest, LineShowsTypeDefaultRangeAndHelp) {
  const std::string help = "\n" + ConfigFieldsHelp();
  auto line_of = [&](const std::string& path) {
    const size_t start = help.find("\n" + path + " ") + 1;
    return help.substr(start, help.find('\n', start) - start);
  };
  EXPECT_NE(line_of("model.layers").find("int32, default 12, 1 to 4096: number of transformer blocks"),
            std::string::npos) << line_of("model.layers");
  EXPECT_NE(line_of("train.steps").find("int64, default 1000, at least 0"), std::string::npos)
      << line_of("train.steps");
  EXPECT_NE(line_of("model.vocab").find("default 50257, 2 to 65535"), std::string::npos) << line_of("model.vocab");
  EXPECT_NE(line_of("model.family").find("enum {GPT2, GPT_ROPE, ROFORMER, ROFORMER_V2}, default GPT2"),
            std::string::npos) << line_of("model.family");
  EXPECT_NE(line_of("optim.eps1").find("double, default 1e-30, at least 0"), std::string::npos)
      << line_of("optim.eps1");
  EXPECT_NE(line_of("data.train").find("string, default \"\": glob of training token shards"), std::string::npos)
      << line_of("data.train");
  EXPECT_NE(line_of("optim.scale_parameter").find("bool, default true"), std::string::npos);
}

}  // namespace
}  // namespace baton
