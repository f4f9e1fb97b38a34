// `baton train` end to end, as a user runs it: a config file, token shards on
// disk, the binary, its exit code, its messages and run_dir/metrics.jsonl.
// The shards are written here byte by byte from the llm.c format description,
// independently of baton's own writer.
#include <cmath>

#include "runtime/device.h"
#include "tests/launch/run_fixture.h"

namespace {

using namespace baton::testing;  // NOLINT: the fixture and its helpers

using TrainCommand = RunFixture;

TEST_F(TrainCommand, TrainsAndWritesMetricsWithFallingValidationLoss) {
  CommandResult r = Train("run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step     40/40"), std::string::npos) << r.output;
  std::vector<double> val;
  int train_lines = 0;
  for (const auto& j : Metrics("run")) {
    ASSERT_TRUE(j.contains("step")) << j;
    if (j.contains("checkpoint")) continue;  // the checkpoint written after the last step
    if (j.contains("val_loss")) {
      val.push_back(j["val_loss"]);
      continue;
    }
    ++train_lines;
    for (const char* key : {"loss", "lr", "grad_norm", "tokens_per_s"}) EXPECT_TRUE(j.contains(key)) << key << " in " << j;
    EXPECT_GT(j["tokens_per_s"].get<double>(), 0);
  }
  EXPECT_EQ(train_lines, 40);
  ASSERT_EQ(val.size(), 3u);  // before training, at step 20, at step 40
  EXPECT_NEAR(val[0], std::log(512.0), 0.2);
  EXPECT_LT(val[2], val[0] - 1.0) << "validation loss did not fall: " << val[0] << " -> " << val[2];
  // The effective config spells out every default.
  std::ifstream cfg(dir_ / "run/config.pbtxt");
  std::string text((std::istreambuf_iterator<char>(cfg)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("eps1"), std::string::npos) << text;
  EXPECT_NE(text.find("hidden: 32"), std::string::npos) << text;
}

TEST_F(TrainCommand, SameCommandTwiceGivesBitwiseIdenticalMetrics) {
  ASSERT_EQ(Train("a").exit_code, 0);
  ASSERT_EQ(Train("b").exit_code, 0);
  auto a = Metrics("a"), b = Metrics("b");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    // Timing fields differ by nature; every number computed from the data must not.
    for (const char* key : {"step", "loss", "lr", "grad_norm", "val_loss", "tokens"}) {
      ASSERT_EQ(a[i].contains(key), b[i].contains(key));
      if (a[i].contains(key)) {
        EXPECT_EQ(a[i][key].dump(), b[i][key].dump()) << key << " line " << i;
      }
    }
  }
}

TEST_F(TrainCommand, RefusesARunDirThatHoldsARun) {
  ASSERT_EQ(Train("run", "--set train.steps=2").exit_code, 0);
  const auto before = Metrics("run").size();
  CommandResult again = Train("run", "--set train.steps=2");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("already holds a run (metrics.jsonl); continue it with --resume auto"), std::string::npos)
      << again.output;
  EXPECT_EQ(Metrics("run").size(), before);
}

TEST_F(TrainCommand, BadConfigFailsBeforeAnyWorkNamingFileAndFields) {
  CommandResult r = Train("run", "--set model.heads=3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(config_.string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model.heads"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "run")) << "nothing may be written for a config that does not validate";
  CommandResult unknown = Train("run", "--set model.hiden=64");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("hiden"), std::string::npos) << unknown.output;
}

TEST_F(TrainCommand, CudaWithoutAGpuIsRefusedBeforeAnyWork) {
  if (baton::CudaDeviceCount() > 0) GTEST_SKIP() << "this machine has a GPU; the refusal is for machines without";
  CommandResult r = Train("run", "--set train.device=CUDA --set model.heads=1");  // head size 32
  EXPECT_NE(r.exit_code, 0);
#if BATON_CUDA
  EXPECT_NE(r.output.find("train.device = CUDA, but rank 0 on "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("has no GPU"), std::string::npos) << r.output;
#else
  EXPECT_NE(r.output.find("this build has no CUDA backend"), std::string::npos) << r.output;
#endif
  EXPECT_FALSE(fs::exists(dir_ / "run")) << "nothing may be written when the device is missing";
}

TEST_F(TrainCommand, CorruptShardIsNamed) {
  WriteShard(dir_ / "data/t_train_000001.bin", Corpus(5, 3), 12345);
  CommandResult r = Train("run");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("t_train_000001.bin"), std::string::npos) << r.output;
}

TEST_F(TrainCommand, PipelineRanksGiveTheSameNumbersAsOneProcess) {
  // Equal thread counts: OpenBLAS may sum in another order with another count.
  ASSERT_EQ(Train("one", "--set train.threads=1").exit_code, 0);
  const std::vector<std::pair<int, std::string>> layouts = {
      {2, "--set parallel.stages=2"},
      {4, "--set parallel.stages=4 --set parallel.schedule=ZERO_BUBBLE_H1 --set parallel.recompute=FULL"},
      {2, "--set parallel.stages=2 --set parallel.schedule=INTERLEAVED_1F1B --set parallel.virtual_stages=2"},
      {2, "--set parallel.stages=2 --set parallel.stage_recompute=FULL,SELECTIVE"},
  };
  for (size_t i = 0; i < layouts.size(); ++i) {
    const std::string run = "pp" + std::to_string(i);
    CommandResult r = Shell(kMpiEnv + "timeout 120 mpirun -np " + std::to_string(layouts[i].first) + " " +
                            std::string(BATON_BINARY) + " train --config " + config_.string() + " --run-dir " +
                            (dir_ / run).string() + " --set train.threads=1 " + layouts[i].second);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("stage " + std::to_string(layouts[i].first - 1) + " of"), std::string::npos) << r.output;
    auto a = Metrics("one"), b = Metrics(run);
    ASSERT_EQ(a.size(), b.size()) << layouts[i].second;
    for (size_t l = 0; l < a.size(); ++l)
      for (const char* key : {"loss", "grad_norm", "val_loss"}) {
        if (a[l].contains(key)) {
          EXPECT_EQ(a[l][key].dump(), b[l][key].dump()) << key << " line " << l << " with " << layouts[i].second;
        }
      }
  }
}

TEST_F(TrainCommand, StagesTimesReplicasMatchOneProcessWithTheGlobalBatch) {
  // 2 stages x 2 replicas with 2 micro-batches each sees the 4 micro-batches one process
  // sees per step; gradients are summed in another order, so agreement is to 1e-6 over a
  // few steps (fp32 rounding differences then grow as training goes on).
  const std::string steps = " --set train.steps=6 --set train.eval_every=3";
  ASSERT_EQ(Train("one", "--set train.threads=1 --set train.microbatches=4" + steps).exit_code, 0);
  CommandResult r = Shell(kMpiEnv + "timeout 120 mpirun -np 4 " + std::string(BATON_BINARY) + " train --config " +
                          config_.string() + " --run-dir " + (dir_ / "dp").string() +
                          " --set train.threads=1 --set parallel.stages=2 --set parallel.replicas=2" + steps);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("replica 1 of 2"), std::string::npos) << r.output;
  auto a = Metrics("one"), b = Metrics("dp");
  ASSERT_EQ(a.size(), b.size());
  for (size_t l = 0; l < a.size(); ++l)
    for (const char* key : {"loss", "grad_norm", "val_loss", "tokens"}) {
      if (a[l].contains(key)) {
        // The gradient norm is the most sensitive number: fp32 rounding of the sums
        // reaches it at a few 1e-6 by step 6.
        const double x = a[l][key], y = b[l][key], tol = std::string(key) == "grad_norm" ? 1e-5 : 1e-6;
        EXPECT_NEAR(x, y, tol * std::max(1.0, std::fabs(x))) << key << " line " << l;
      }
    }
}

TEST_F(TrainCommand, ScheduleOverTheActivationBudgetIsRefusedBeforeAnyWork) {
  // GPipe keeps all 2 micro-batches in flight on every stage; the budget allows 1.
  CommandResult r = Shell(kMpiEnv + "timeout 60 mpirun -np 2 " + std::string(BATON_BINARY) + " train --config " +
                          config_.string() + " --run-dir " + (dir_ / "run").string() +
                          " --set parallel.stages=2 --set parallel.schedule=GPIPE"
                          " --set parallel.max_inflight_microbatches=1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("the pipeline schedule"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

TEST_F(TrainCommand, AFailingRankBringsTheJobDownNamingIt) {
  CommandResult r = Shell(kMpiEnv + "BATON_FAIL_AT=1:3 timeout 60 mpirun -np 2 " + std::string(BATON_BINARY) +
                          " train --config " + config_.string() + " --run-dir " + (dir_ / "run").string() +
                          " --set parallel.stages=2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 124) << "the job hung instead of going down";
  // The error line itself names the failing rank.
  const size_t at = r.output.find("injected failure at step 3");
  ASSERT_NE(at, std::string::npos) << r.output;
  const size_t line_start = r.output.rfind('\n', at) == std::string::npos ? 0 : r.output.rfind('\n', at) + 1;
  EXPECT_EQ(r.output.compare(line_start, 9, "[rank 1/2"), 0) << r.output.substr(line_start, at - line_start + 30);
}

TEST_F(TrainCommand, WrongWorldSizeBringsEveryRankDown) {
  CommandResult r = Shell(kMpiEnv + "timeout 60 mpirun -np 2 " + std::string(BATON_BINARY) + " train --config " + config_.string() +
                " --run-dir " + (dir_ / "run").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 124) << "the job hung instead of aborting";
  EXPECT_NE(r.output.find("mpirun -np 1"), std::string::npos) << r.output;
}

}  // namespace
