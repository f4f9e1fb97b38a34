// `baton eval` end to end, through the binary: the validation loss of a run's
// checkpoint equals, bit for bit, the val_loss the training run logged at that
// step (whatever pipeline wrote the checkpoint); --set picks another validation
// set or sample size; its refusals name the problem.
#include <cstdlib>

#include "tests/launch/run_fixture.h"

namespace {
using namespace baton::testing;  // NOLINT: the fixture and its helpers

// 12 steps, validation at 0, 4, 8 and 12, a checkpoint at 4, 8 and 12 (all kept).
constexpr char kRun[] =
    "--set train.threads=1 --set train.steps=12 --set train.eval_every=4 --set checkpoint.every=4 ";

class EvalCommand : public RunFixture {
 protected:
  // `baton eval --run-dir DIR/run extra`, stdout and stderr together.
  CommandResult Eval(const std::string& run, const std::string& extra = "") {
    return Shell(EvalCommandLine(run, extra));
  }
  std::string EvalCommandLine(const std::string& run, const std::string& extra) const {
    return std::string(BATON_BINARY) + " eval --run-dir " + (dir_ / run).string() + " " + extra;
  }
  // The val_loss the run logged at `step`.
  double LoggedValLoss(const std::string& run, int64_t step) {
    for (const auto& j : Metrics(run))
      if (j.contains("val_loss") && j["step"] == step) return j["val_loss"].get<double>();
    ADD_FAILURE() << run << " logged no val_loss at step " << step;
    return -1;
  }
  // The value of the `val_loss=` line (-1 when there is none).
  static double PrintedValLoss(const std::string& output) {
    const size_t at = output.find("val_loss=");
    return at == std::string::npos ? -1 : std::strtod(output.c_str() + at + 9, nullptr);
  }
  nlohmann::json ReadJson(const fs::path& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << path;
    return in.good() ? nlohmann::json::parse(in) : nlohmann::json();
  }
};

TEST_F(EvalCommand, LatestAndEarlierCheckpointsGiveTheLoggedValLossBitwise) {
  CommandResult train = Train("run", kRun);
  ASSERT_EQ(train.exit_code, 0) << train.output;

  // The newest checkpoint (LATEST: step 12); stdout is the one val_loss line.
  CommandResult only_stdout = Shell("(" + EvalCommandLine("run", "") + " 2>/dev/null)");
  ASSERT_EQ(only_stdout.exit_code, 0) << Eval("run").output;
  ASSERT_EQ(only_stdout.output.rfind("val_loss=", 0), 0u) << only_stdout.output;
  ASSERT_EQ(only_stdout.output.find('\n'), only_stdout.output.size() - 1) << only_stdout.output;
  const double logged12 = LoggedValLoss("run", 12);
  EXPECT_EQ(PrintedValLoss(only_stdout.output), logged12) << only_stdout.output;  // %.17g: the double exactly
  const nlohmann::json latest = ReadJson(dir_ / "run/eval_step_12.json");
  EXPECT_EQ(latest["step"], 12);
  EXPECT_EQ(latest["val_loss"].get<double>(), logged12) << latest;
  EXPECT_NE(latest["checkpoint"].get<std::string>().find("step_00000012"), std::string::npos) << latest;
  EXPECT_EQ(latest["config"], (dir_ / "run/config.pbtxt").string());
  EXPECT_EQ(latest["val"], (dir_ / "data/t_val_*.bin").string());
  EXPECT_EQ(latest["eval_batches"], 4);
  EXPECT_EQ(latest["loss_targets"], 4 * 4 * 16);  // causal LM: every position of 4 x 4 windows of 16
  EXPECT_EQ(latest["objective"], "CAUSAL_LM");

  // Earlier checkpoints, --json OUT; the weights of each step give that step's logged loss.
  for (int64_t step : {4, 8}) {
    const fs::path out = dir_ / ("at_" + std::to_string(step) + ".json");
    CommandResult r = Eval("run", "--step " + std::to_string(step) + " --json " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(PrintedValLoss(r.output), LoggedValLoss("run", step)) << r.output;
    const nlohmann::json j = ReadJson(out);
    EXPECT_EQ(j["step"], step);
    EXPECT_EQ(j["val_loss"].get<double>(), LoggedValLoss("run", step)) << j;
    EXPECT_FALSE(fs::exists(dir_ / ("run/eval_step_" + std::to_string(step) + ".json")));
  }
  EXPECT_LT(LoggedValLoss("run", 12), LoggedValLoss("run", 4));  // the steps really hold different weights
}

TEST_F(EvalCommand, OverridesPickAnotherValidationSetAndSampleSize) {
  WriteShard(dir_ / "data/o_val_000000.bin", Corpus(40, 7));
  const std::string other = (dir_ / "data/o_val_*.bin").string();
  // Validation does not change training: run b is run a, validated on the other set with 8 batches.
  CommandResult a = Train("a", kRun);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  CommandResult b = Train("b", std::string(kRun) + "--set data.val=" + other + " --set train.eval_batches=8");
  ASSERT_EQ(b.exit_code, 0) << b.output;

  CommandResult both = Eval("a", "--set data.val=" + other + " --set train.eval_batches=8");
  ASSERT_EQ(both.exit_code, 0) << both.output;
  EXPECT_EQ(PrintedValLoss(both.output), LoggedValLoss("b", 12)) << both.output;
  const nlohmann::json j = ReadJson(dir_ / "a/eval_step_12.json");
  EXPECT_EQ(j["val"], other);
  EXPECT_EQ(j["eval_batches"], 8);
  EXPECT_EQ(j["loss_targets"], 8 * 4 * 16);

  CommandResult other_set = Eval("a", "--set data.val=" + other);
  ASSERT_EQ(other_set.exit_code, 0) << other_set.output;
  const double on_other = PrintedValLoss(other_set.output);
  EXPECT_GT(on_other, 0);
  EXPECT_NE(on_other, LoggedValLoss("a", 12)) << "another validation set gave the same loss";
  EXPECT_NE(on_other, LoggedValLoss("b", 12)) << "8 batches gave the same loss as 4";
}

TEST_F(EvalCommand, ACheckpointOfATwoStagePipelineEvaluatesInOneProcess) {
  CommandResult train = Train("pipe", std::string(kRun) + "--set parallel.stages=2", 2);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  CommandResult latest = Eval("pipe");
  ASSERT_EQ(latest.exit_code, 0) << latest.output;
  EXPECT_NE(latest.output.find("written by 2 stage(s)"), std::string::npos) << latest.output;
  EXPECT_EQ(PrintedValLoss(latest.output), LoggedValLoss("pipe", 12)) << latest.output;
  CommandResult earlier = Eval("pipe", "--step=8");
  ASSERT_EQ(earlier.exit_code, 0) << earlier.output;
  EXPECT_EQ(PrintedValLoss(earlier.output), LoggedValLoss("pipe", 8)) << earlier.output;
}

TEST_F(EvalCommand, MaskedLmEvaluatesTheSameMaskedPositions) {
  // Masked LM's choices are keyed by the validation seed: the same seed, the same loss.
  CommandResult train = Train("mlm", std::string(kRun) +
                                         "--set model.family=ROFORMER --set objective.eot_token=50 "
                                         "--set objective.mask_token=510 --set objective.sep_token=511");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  CommandResult r = Eval("mlm", "--step 8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(PrintedValLoss(r.output), LoggedValLoss("mlm", 8)) << r.output;
  const nlohmann::json j = ReadJson(dir_ / "mlm/eval_step_8.json");
  EXPECT_EQ(j["objective"], "MASKED_LM");
  EXPECT_GT(j["loss_targets"].get<int64_t>(), 0);
  EXPECT_LT(j["loss_targets"].get<int64_t>(), 4 * 4 * 16);  // only the masked positions count
}

TEST_F(EvalCommand, RefusalsNameTheProblem) {
  // A run without checkpoints.
  ASSERT_EQ(Train("bare", "--set train.steps=2 --set checkpoint.final=false").exit_code, 0);
  CommandResult bare = Eval("bare");
  EXPECT_EQ(bare.exit_code, 1);
  EXPECT_NE(bare.output.find((dir_ / "bare/ckpt").string() + " holds no committed checkpoint"), std::string::npos)
      << bare.output;
  const std::string elsewhere = (dir_ / "elsewhere").string();
  CommandResult gone = Eval("bare", "--set checkpoint.dir=" + elsewhere);
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.output.find("checkpoint directory " + elsewhere + " does not exist"), std::string::npos)
      << gone.output;
  // Not a run directory.
  CommandResult none = Eval("nowhere");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find((dir_ / "nowhere/config.pbtxt").string() + " does not exist"), std::string::npos)
      << none.output;
  EXPECT_NE(none.output.find("--config FILE"), std::string::npos) << none.output;

  ASSERT_EQ(Train("run", kRun).exit_code, 0);
  // A step without a checkpoint: the message lists those there are.
  CommandResult missing = Eval("run", "--step 5");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("has no committed checkpoint of step 5; the steps there: 4, 8, 12"), std::string::npos)
      << missing.output;
  // Another model, by --set and by --config: the differing fields are named.
  CommandResult layers = Eval("run", "--set model.layers=3");
  EXPECT_EQ(layers.exit_code, 1);
  EXPECT_NE(layers.output.find("model.layers: 2 there, 3 in this run's config"), std::string::npos) << layers.output;
  const fs::path wide = dir_ / "wide.pbtxt";
  fs::copy_file(dir_ / "run/config.pbtxt", wide);
  CommandResult hidden = Eval("run", "--config " + wide.string() + " --set model.hidden=64");
  EXPECT_EQ(hidden.exit_code, 1);
  EXPECT_NE(hidden.output.find(wide.string()), std::string::npos) << hidden.output;
  EXPECT_NE(hidden.output.find("model.hidden: 32 there, 64"), std::string::npos) << hidden.output;
  // Bad arguments.
  EXPECT_EQ(Eval("run", "--step twelve").exit_code, 2);
  EXPECT_EQ(Shell(std::string(BATON_BINARY) + " eval --step 4").exit_code, 2);  // no --run-dir
  // More than one rank.
  CommandResult ranks = Shell("env " + kMpiEnv + "timeout 60 mpirun -np 2 " + EvalCommandLine("run", ""));
  EXPECT_NE(ranks.exit_code, 0);
  EXPECT_NE(ranks.output.find("started as 2 MPI ranks; it runs in one process"), std::string::npos) << ranks.output;
  for (const auto& entry : fs::directory_iterator(dir_ / "run"))
    EXPECT_EQ(entry.path().filename().string().rfind("eval_step_", 0), std::string::npos) << "refused, yet wrote "
                                                                                          << entry.path();
}

TEST_F(EvalCommand, HelpDescribesTheCommand) {
  CommandResult help = Shell(std::string(BATON_BINARY) + " eval --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* text : {"--run-dir DIR", "--step N", "--config FILE", "--set FIELD=VALUE", "--json OUT",
                           "val_loss=", "bit for bit"})
    EXPECT_NE(help.output.find(text), std::string::npos) << text << " in\n" << help.output;
  CommandResult top = Shell(std::string(BATON_BINARY) + " --help");
  EXPECT_NE(top.output.find("eval      validation loss"), std::string::npos) << top.output;
}

}  // namespace
