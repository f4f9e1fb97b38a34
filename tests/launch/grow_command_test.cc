// `baton grow` end to end: a trained small GPT grown in width and depth keeps its
// function (its next training loss is the small model's), resumes under another
// pipeline layout, and the symmetry-breaking pitfall shows: without noise the
// copies of a hidden unit stay equal and the grown model tracks the small one,
// with noise they diverge.
#include <cmath>

#include "checkpoint/checkpoint_reader.h"
#include "tests/launch/run_fixture.h"

namespace {
using namespace baton::testing;  // NOLINT: the fixture and its helpers

class GrowCommand : public RunFixture {
 protected:
  // The small run: 20 steps, a checkpoint at the end.
  void TrainSmall() {
    CommandResult r = Train("small", "--set train.threads=1 --set train.steps=20 --set train.eval_every=10");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  CommandResult Grow(const std::string& out, const std::string& extra) {
    return Shell(std::string(BATON_BINARY) + " grow --from " + (dir_ / "small").string() + " --config " +
                 config_.string() + " --out " + (dir_ / out).string() + " " + extra);
  }
  // Continues `run` (grown or small) to step `steps` in `ranks` processes.
  CommandResult Continue(const std::string& run, int steps, const std::string& extra = "", int ranks = 0) {
    const std::string config = fs::exists(dir_ / run / "grown.pbtxt") ? (dir_ / run / "grown.pbtxt").string()
                                                                       : config_.string();
    std::string launcher = ranks > 0 ? "env " + kMpiEnv + "timeout 120 mpirun -np " + std::to_string(ranks) + " " : "";
    return Shell(launcher + BATON_BINARY + " train --config " + config + " --run-dir " + (dir_ / run).string() +
                 " --resume auto --set train.threads=1 --set train.steps=" + std::to_string(steps) + " " + extra);
  }
  std::vector<double> TrainLosses(const std::string& run, int from_step) {
    std::vector<double> out;
    for (auto& j : LossLines(run))
      if (j.contains("loss") && j["step"] >= from_step) out.push_back(j["loss"]);
    return out;
  }
  // max |copy b - copy 0| over the hidden copies of the token table at `step`, relative to max |copy 0|.
  double CopySpread(const std::string& run, int step, int64_t hidden_small) {
    char name[32];
    std::snprintf(name, sizeof(name), "step_%08d", step);
    auto reader = baton::CheckpointReader::Open((dir_ / run / "ckpt" / name).string());
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    baton::Tensor wte = reader->Read("wte").value();
    const int64_t rows = wte.dim(0), cols = wte.dim(1);
    double spread = 0, scale = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const double base = wte.data<float>()[r * cols + c % hidden_small];
        spread = std::max(spread, std::fabs(wte.data<float>()[r * cols + c] - base));
        scale = std::max(scale, std::fabs(base));
      }
    return spread / scale;
  }
};

constexpr const char* kBig = "--set model.hidden=64 --set model.heads=4 --set model.layers=3 ";

TEST_F(GrowCommand, GrownModelContinuesTheSmallModelsFunctionUnderAnotherLayout) {
  TrainSmall();
  CommandResult g = Grow("big", std::string(kBig) + "--noise 0.05");
  ASSERT_EQ(g.exit_code, 0) << g.output;
  EXPECT_NE(g.output.find("(exact to float rounding)"), std::string::npos) << g.output;
  EXPECT_NE(g.output.find("depth: 2 -> 3 blocks, 1 new (interleaved)"), std::string::npos) << g.output;
  // baton eval: the grown checkpoint's validation loss is the small model's at step 20.
  CommandResult e = Shell(std::string(BATON_BINARY) + " eval --run-dir " + (dir_ / "big").string() + " --config " +
                          (dir_ / "big/grown.pbtxt").string());
  ASSERT_EQ(e.exit_code, 0) << e.output;
  double small_val = 0;
  for (auto& j : LossLines("small"))
    if (j.contains("val_loss") && j["step"] == 20) small_val = j["val_loss"];
  const size_t at = e.output.find("val_loss=");
  ASSERT_NE(at, std::string::npos) << e.output;
  EXPECT_NEAR(std::stod(e.output.substr(at + 9)), small_val, 1e-5 * small_val) << e.output;

  // Step 21 sees the same batch in both runs (the data position is carried over), and
  // its loss is computed before the update: the function at the growth point.
  ASSERT_EQ(Continue("small", 21).exit_code, 0);
  CommandResult big = Continue("big", 23, "--set parallel.stages=2 --set parallel.schedule=ZERO_BUBBLE_H1", 2);
  ASSERT_EQ(big.exit_code, 0) << big.output;
  EXPECT_NE(big.output.find("resumed from"), std::string::npos) << big.output;
  const double small_loss = TrainLosses("small", 21).at(0), big_loss = TrainLosses("big", 21).at(0);
  EXPECT_NEAR(big_loss, small_loss, 1e-5 * small_loss) << big.output;
  // And the 2-stage run trained all three steps it was given after the growth point.
  ASSERT_EQ(TrainLosses("big", 21).size(), 3u);
}

TEST_F(GrowCommand, WithoutNoiseTheCopiesStayEqualAndTheGrownModelTracksTheSmallOne) {
  TrainSmall();
  ASSERT_EQ(Grow("plain", "--set model.hidden=64 --set model.heads=4 --noise 0").exit_code, 0);
  ASSERT_EQ(Grow("noisy", "--set model.hidden=64 --set model.heads=4 --noise 0.05").exit_code, 0);
  // Global gradient-norm clipping off: the grown model's global norm is another number
  // (repeated vectors count k times), which would clip differently.
  const std::string no_clip = "--set optim.clip_grad_norm=0 ";
  ASSERT_EQ(Continue("small", 30, no_clip).exit_code, 0);
  for (const char* run : {"plain", "noisy"})
    ASSERT_EQ(Continue(run, 30, no_clip + "--set checkpoint.every=10").exit_code, 0);
  // The pitfall: no noise, no dropout: the two copies of every hidden unit get the same
  // gradient, so they stay equal, and the wide model computes what the small one does.
  EXPECT_LT(CopySpread("plain", 30, 32), 1e-5);
  const std::vector<double> small = TrainLosses("small", 21), plain = TrainLosses("plain", 21);
  ASSERT_EQ(small.size(), 10u);
  ASSERT_EQ(plain.size(), 10u);
  for (size_t i = 0; i < small.size(); ++i) EXPECT_NEAR(plain[i], small[i], 1e-4 * small[i]) << "step " << 21 + i;
  // Independent off-diagonal noise in the matrices: the token table's copies, which start
  // equal (tables are repeated, not noised), now get different gradients and come apart.
  EXPECT_GT(CopySpread("noisy", 30, 32), 1e-3);
}

TEST_F(GrowCommand, RefusalsNameTheFieldAndWriteNothing) {
  TrainSmall();
  CommandResult r = Grow("bad", "--set model.hidden=64 --set model.heads=2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("model.heads: 2, expected 4"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "bad" / "ckpt"));
  r = Grow("other", "--set model.family=ROFORMER --set objective.kind=CAUSAL_LM --set model.hidden=64 --set model.heads=4");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("model.family: GPT2 in the small model, ROFORMER in the big one"), std::string::npos)
      << r.output;
  // Noise this large amplifies the copies' rounding differences: the check refuses it.
  r = Grow("loud", std::string(kBig) + "--noise 10");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("more than float rounding; nothing was written"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "loud" / "ckpt"));
  ASSERT_EQ(Grow("twice", std::string(kBig)).exit_code, 0);
  r = Grow("twice", std::string(kBig));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("already holds a run (grown.pbtxt)"), std::string::npos) << r.output;
}

}  // namespace
