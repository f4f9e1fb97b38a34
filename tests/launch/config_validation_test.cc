// ValidateRunConfig: (baton.min)/(baton.max) ranges and the cross-field rules.
#include "launch/config_validation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace baton {
namespace {

constexpr const char* kSource = "configs/x.pbtxt";

RunConfig Valid() {
  RunConfig config;
  config.mutable_data()->set_train("data/t/*.bin");
  config.mutable_data()->set_val("data/v/*.bin");
  return config;
}

// The message, or "" when valid.
std::string Problems(const RunConfig& config) {
  Status s = ValidateRunConfig(config, kSource);
  if (!s.ok()) {
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  }
  return s.message();
}

bool Has(const std::string& problems, const std::string& line) {
  return problems.find(std::string(kSource) + ": " + line) != std::string::npos;
}

TEST(ConfigValidationTest, DefaultsWithDataAreValid) { EXPECT_EQ(Problems(Valid()), ""); }

TEST(ConfigValidationTest, CudaRunsWithASupportedHeadSizeOnAnyNumberOfGpus) {
  RunConfig config = Valid();
  config.mutable_train()->set_device(TrainConfig::CUDA);
  config.mutable_model()->set_hidden(768);
  config.mutable_model()->set_heads(12);  // head size 64
#if BATON_CUDA
  EXPECT_EQ(Problems(config), "");
#else
  EXPECT_TRUE(Has(Problems(config), "train.device = CUDA, but this build has no CUDA backend")) << Problems(config);
#endif
  config.mutable_parallel()->set_stages(2);
  config.mutable_parallel()->set_replicas(2);
#if BATON_CUDA
  EXPECT_EQ(Problems(config), "");  // pipeline stages and replicas over NCCL
#endif
  config.mutable_model()->set_heads(16);  // head size 48
  const std::string p = Problems(config);
  EXPECT_TRUE(Has(p, "model.hidden / model.heads = 48: the GPU attention kernel supports head sizes 32, 64 and 128"))
      << p;
}

TEST(ConfigValidationTest, NegativeLearningRate) {
  RunConfig config = Valid();
  config.mutable_optim()->set_lr(-0.1);
  EXPECT_EQ(Problems(config), "configs/x.pbtxt: optim.lr = -0.1 is below the minimum 0");
}

TEST(ConfigValidationTest, ZeroLayers) {
  RunConfig config = Valid();
  config.mutable_model()->set_layers(0);
  EXPECT_EQ(Problems(config), "configs/x.pbtxt: model.layers = 0 is below the minimum 1");
}

TEST(ConfigValidationTest, AboveMaximum) {
  RunConfig config = Valid();
  config.mutable_model()->set_vocab(70000);
  config.mutable_optim()->set_min_lr_ratio(1.5);
  const std::string p = Problems(config);
  EXPECT_TRUE(Has(p, "model.vocab = 70000 is above the maximum 65535")) << p;
  EXPECT_TRUE(Has(p, "optim.min_lr_ratio = 1.5 is above the maximum 1")) << p;
}

TEST(ConfigValidationTest, SizesThatWouldOverflowAreRejected) {
  RunConfig config = Valid();
  config.mutable_model()->set_vocab_multiple(2147483647);
  config.mutable_model()->set_hidden(400000);
  const std::string p = Problems(config);
  EXPECT_TRUE(Has(p, "model.vocab_multiple = 2147483647 is above the maximum 65536")) << p;
  EXPECT_TRUE(Has(p, "model.hidden = 400000 is above the maximum 131072")) << p;
}

TEST(ConfigValidationTest, CheckpointFields) {
  RunConfig config = Valid();
  config.mutable_checkpoint()->set_every(100);
  config.mutable_checkpoint()->set_wall_time_minutes(90);
  EXPECT_EQ(Problems(config), "");
  config.mutable_checkpoint()->set_wall_time_minutes(0.001);
  config.mutable_checkpoint()->set_dir("a\nb");
  const std::string p = Problems(config);
  EXPECT_TRUE(Has(p, "checkpoint.wall_time_minutes = 0.001000 leaves no time to train")) << p;
  EXPECT_TRUE(Has(p, "checkpoint.dir must be one line")) << p;
}

TEST(ConfigValidationTest, NonFiniteNumbers) {
  RunConfig config = Valid();
  config.mutable_optim()->set_lr(std::nan(""));
  EXPECT_TRUE(Has(Problems(config), "optim.lr = nan is not a finite number"));
}

TEST(ConfigValidationTest, HiddenDivisibleByHeads) {
  RunConfig config = Valid();
  config.mutable_model()->set_hidden(100);
  EXPECT_TRUE(Has(Problems(config), "model.hidden = 100 is not divisible by model.heads = 12"));
}

TEST(ConfigValidationTest, RopeNeedsEvenHeadSize) {
  RunConfig config = Valid();
  config.mutable_model()->set_family(ModelConfig::GPT_ROPE);
  config.mutable_model()->set_hidden(780);  // 65 per head
  const std::string p = Problems(config);
  EXPECT_TRUE(Has(p, "model.family = GPT_ROPE needs an even head size, but model.hidden / model.heads = 780 / 12 = 65"))
      << p;
  config.mutable_model()->set_family(ModelConfig::GPT2);
  EXPECT_EQ(Problems(config), "");  // odd head sizes are fine without RoPE
}

TEST(ConfigValidationTest, SeqLenFitsMaxPositions) {
  RunConfig config = Valid();
  config.mutable_train()->set_seq_len(2048);
  EXPECT_TRUE(Has(Problems(config), "train.seq_len = 2048 exceeds model.max_positions = 1024"));
}

TEST(ConfigValidationTest, RoformerFamiliesAndObjectives) {
  for (ModelConfig::Family family : {ModelConfig::ROFORMER, ModelConfig::ROFORMER_V2}) {
    RunConfig config = Valid();
    config.mutable_model()->set_family(family);
    // Masked LM by default: its [MASK] id (GPT-2's vocabulary + 1) must be a row of the model.
    EXPECT_TRUE(Has(Problems(config), "objective.mask_token = 50257 is not below model.vocab = 50257")) << family;
    config.mutable_model()->set_vocab(50259);
    EXPECT_EQ(Problems(config), "") << family;
    config.mutable_model()->set_hidden(40);
    config.mutable_model()->set_heads(8);  // head size 5: RoPE rotates pairs
    EXPECT_TRUE(Has(Problems(config), "model.family = " + ModelConfig::Family_Name(family) + " needs an even head size"))
        << family;
  }
  RunConfig config = Valid();
  config.mutable_model()->set_family(ModelConfig::ROFORMER);
  config.mutable_model()->set_vocab(50259);
  config.mutable_objective()->set_mask_token_fraction(0.8);
  config.mutable_objective()->set_random_token_fraction(0.3);
  EXPECT_TRUE(Has(Problems(config), "objective.mask_token_fraction + objective.random_token_fraction = 1.1 exceeds 1"));
  config.mutable_objective()->set_random_token_fraction(0.1);
  config.mutable_objective()->set_mask_fraction(0);
  EXPECT_TRUE(Has(Problems(config), "objective.mask_fraction = 0 selects nothing to predict"));
  // Seq2seq on a GPT model is a prefix LM; its separator must be a row of the model too.
  RunConfig gpt = Valid();
  gpt.mutable_objective()->set_kind(ObjectiveConfig::SEQ2SEQ);
  EXPECT_TRUE(Has(Problems(gpt), "objective.sep_token = 50258 is not below model.vocab = 50257"));
  gpt.mutable_model()->set_vocab(50259);
  EXPECT_EQ(Problems(gpt), "");
  gpt.mutable_train()->set_seq_len(3);
  EXPECT_TRUE(Has(Problems(gpt), "train.seq_len = 3 is too short for SEQ2SEQ"));
  config.mutable_objective()->set_mask_fraction(0.15);
  config.mutable_train()->set_seq_len(1);
  EXPECT_TRUE(Has(Problems(config), "train.seq_len = 1 is too short for MASKED_LM"));
}

TEST(ConfigValidationTest, StagesAndReplicas) {
  RunConfig config = Valid();
  config.mutable_parallel()->set_stages(4);
  config.mutable_parallel()->set_replicas(2);
  EXPECT_EQ(Problems(config), "");
}

TEST(ConfigValidationTest, StageRecomputeNeedsOnePolicyPerStage) {
  RunConfig config = Valid();
  config.mutable_parallel()->set_stages(3);
  config.mutable_parallel()->add_stage_recompute(ParallelConfig::FULL);
  config.mutable_parallel()->add_stage_recompute(ParallelConfig::NONE);
  EXPECT_TRUE(Has(Problems(config), "parallel.stage_recompute lists 2 policies for parallel.stages = 3")) << Problems(config);
  config.mutable_parallel()->add_stage_recompute(ParallelConfig::SELECTIVE);
  EXPECT_EQ(Problems(config), "");
}

TEST(ConfigValidationTest, VirtualStagesNeedInterleavedSchedule) {
  RunConfig config = Valid();
  config.mutable_parallel()->set_virtual_stages(2);
  EXPECT_TRUE(Has(Problems(config), "parallel.virtual_stages = 2 needs parallel.schedule = INTERLEAVED_1F1B"));
  config.mutable_parallel()->set_schedule(ParallelConfig::INTERLEAVED_1F1B);
  EXPECT_EQ(Problems(config), "");
}

TEST(ConfigValidationTest, TrainingDataRequired) {
  RunConfig config = Valid();
  config.mutable_data()->clear_train();
  const std::string p = Problems(config);
  EXPECT_TRUE(Has(p, "data.train is empty; set it to a glob of training token shards")) << p;
}

TEST(ConfigValidationTest, ValidationDataRequiredOnlyWhenEvaluating) {
  RunConfig config = Valid();
  config.mutable_data()->clear_val();
  EXPECT_TRUE(Has(Problems(config), "data.val is empty but train.eval_batches = 20"));
  config.mutable_train()->set_eval_batches(0);
  EXPECT_EQ(Problems(config), "");
}

TEST(ConfigValidationTest, WarmupLongerThanTrainingIsAllowed) {
  RunConfig config = Valid();
  config.mutable_train()->set_steps(10);
  config.mutable_optim()->set_warmup_steps(100);
  EXPECT_EQ(Problems(config), "");
}

TEST(ConfigValidationTest, ReportsAllProblemsOnePerLine) {
  RunConfig config;  // no data
  config.mutable_optim()->set_lr(-1);
  config.mutable_model()->set_layers(0);
  config.mutable_model()->set_heads(7);
  const std::string p = Problems(config);
  EXPECT_TRUE(Has(p, "optim.lr = -1 is below the minimum 0")) << p;
  EXPECT_TRUE(Has(p, "model.layers = 0 is below the minimum 1")) << p;
  EXPECT_TRUE(Has(p, "model.hidden = 768 is not divisible by model.heads = 7")) << p;
  EXPECT_TRUE(Has(p, "data.train is empty")) << p;
  EXPECT_EQ(std::count(p.begin(), p.end(), '\n'), 4) << p;  // 5 problems (data.val too)
}

}  // namespace
}  // namespace baton
