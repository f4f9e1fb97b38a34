// `baton train` end to end on the RoFormer families: RoFormer with masked LM and
// RoFormerV2 with UniLM seq2seq learn (validation loss falls), give the same numbers
// on pipeline ranks as in one process, and a checkpoint resumes under another layout.
#include <cmath>

#include "tests/launch/run_fixture.h"

namespace {
using namespace baton::testing;  // NOLINT: the fixture and its helpers

// The run fixture's corpus separates documents with token 50; the model has 512 ids,
// so the objective's special tokens are set inside that vocabulary.
constexpr const char* kSpecials =
    "--set objective.eot_token=50 --set objective.mask_token=510 --set objective.sep_token=511 ";

class RoformerTrain : public RunFixture {
 protected:
  // Seq2seq examples <50> source <511> target, where the target is the source shifted by
  // one (mod 97): learnable only by looking at the source.
  static std::vector<uint16_t> Seq2SeqCorpus(int examples, uint32_t seed) {
    std::vector<uint16_t> t;
    uint32_t state = seed;
    for (int e = 0; e < examples; ++e) {
      state = state * 1664525u + 1013904223u;
      const int n = 3 + static_cast<int>(state >> 28) % 4;
      std::vector<uint16_t> source;
      for (int i = 0; i < n; ++i) {
        state = state * 1664525u + 1013904223u;
        source.push_back(static_cast<uint16_t>(100 + (state >> 16) % 97));
      }
      t.push_back(50);
      t.insert(t.end(), source.begin(), source.end());
      t.push_back(511);
      for (uint16_t s : source) t.push_back(static_cast<uint16_t>(100 + (s - 100 + 1) % 97));
    }
    return t;
  }
  void UseSeq2SeqData() {
    WriteShard(dir_ / "data/t_train_000000.bin", Seq2SeqCorpus(1500, 1));
    WriteShard(dir_ / "data/t_val_000000.bin", Seq2SeqCorpus(100, 2));
  }
  void ExpectValidationFalls(const std::string& run) {
    std::vector<double> val;
    for (auto& j : LossLines(run))
      if (j.contains("val_loss")) val.push_back(j["val_loss"]);
    ASSERT_GE(val.size(), 2u);
    // From about ln(512) = 6.2 nats; the rules of the data are worth more than half a nat within the run.
    EXPECT_LT(val.back(), val.front() - 0.5) << run << ": validation loss " << val.front() << " -> " << val.back();
  }
  void ExpectSameMetrics(const std::string& a_run, const std::string& b_run, double tol = 0) {
    auto a = LossLines(a_run), b = LossLines(b_run);
    size_t skip = 0;
    while (skip < a.size() && a[skip]["step"] < b.at(0)["step"]) ++skip;
    a.erase(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(skip));
    ASSERT_EQ(a.size(), b.size()) << a_run << " vs " << b_run;
    for (size_t l = 0; l < a.size(); ++l)
      for (const char* key : {"loss", "grad_norm", "val_loss", "loss_targets"}) {
        if (!a[l].contains(key)) continue;
        if (tol == 0) {
          EXPECT_EQ(a[l][key].dump(), b[l][key].dump()) << key << " line " << l << " of " << b_run;
        } else {
          const double x = a[l][key], y = b[l][key], t = std::string(key) == "grad_norm" ? 30 * tol : tol;
          EXPECT_NEAR(x, y, t * std::max(1.0, std::fabs(x))) << key << " line " << l << " of " << b_run;
        }
      }
  }
};

TEST_F(RoformerTrain, MaskedLmLearnsAndPipelineRanksAgreeAndResumeAcrossLayouts) {
  const std::string mlm = std::string(kSpecials) +
                          "--set model.family=ROFORMER --set train.threads=1 --set checkpoint.every=20 ";
  CommandResult one = Train("one", mlm);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("objective MASKED_LM"), std::string::npos) << one.output;
  ExpectValidationFalls("one");
  // Masked LM predicts about 15% of the positions: the loss counts only those.
  nlohmann::json first;
  for (auto& j : LossLines("one"))
    if (j.contains("loss") && first.is_null()) first = j;
  ASSERT_TRUE(first.contains("loss_targets")) << first.dump();
  const double targets = first["loss_targets"], tokens = first["tokens"];
  EXPECT_GT(targets, 0.10 * tokens);
  EXPECT_LT(targets, 0.20 * tokens);

  CommandResult pp = Train("pp", mlm + "--set parallel.stages=2 --set parallel.schedule=ZERO_BUBBLE_H1", 2);
  ASSERT_EQ(pp.exit_code, 0) << pp.output;
  ExpectSameMetrics("one", "pp");

  // The 2-stage run's step-20 checkpoint, resumed in one process and on 2 replicas.
  CommandResult alone = Train("resumed1", mlm + "--resume " + (dir_ / "pp/ckpt/step_00000020").string());
  ASSERT_EQ(alone.exit_code, 0) << alone.output;
  ExpectSameMetrics("one", "resumed1");
  CommandResult dp = Train("resumed_dp", mlm + "--set parallel.replicas=2 --set train.microbatches=1 --resume " +
                                             (dir_ / "pp/ckpt/step_00000020").string(), 2);
  ASSERT_EQ(dp.exit_code, 0) << dp.output;
  ExpectSameMetrics("one", "resumed_dp", 1e-5);
}

TEST_F(RoformerTrain, Seq2SeqOnRoformerV2LearnsTheTargetFromTheSource) {
  UseSeq2SeqData();
  const std::string s2s = std::string(kSpecials) +
                          "--set model.family=ROFORMER_V2 --set objective.kind=SEQ2SEQ --set train.threads=1 "
                          "--set train.steps=150 --set train.eval_every=75 ";
  CommandResult one = Train("one", s2s);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("objective SEQ2SEQ"), std::string::npos) << one.output;
  ExpectValidationFalls("one");
  // A model that ignored the source could only learn which 97 ids targets use: ln 97 = 4.57.
  // Below that, the target is read off the source through the prefix mask.
  double last = 0;
  for (auto& j : LossLines("one"))
    if (j.contains("val_loss")) last = j["val_loss"];
  EXPECT_LT(last, 4.4) << one.output;
  CommandResult pp = Train("pp", s2s + "--set train.steps=20 --set parallel.stages=2 --set parallel.recompute=FULL", 2);
  ASSERT_EQ(pp.exit_code, 0) << pp.output;
  CommandResult short_one = Train("one20", s2s + "--set train.steps=20");
  ASSERT_EQ(short_one.exit_code, 0) << short_one.output;
  ExpectSameMetrics("one20", "pp");
}

}  // namespace
