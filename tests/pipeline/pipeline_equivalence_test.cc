// The same training run on every pipeline layout: 1, 2 or 4 ranks (one per
// stage, mpirun -np), every schedule, every recompute policy. Each rank also
// trains the model alone in one process (the single-process Trainer) and the
// two must agree bitwise: losses, gradient norms, and every weight the rank
// holds, including both copies of the tied embedding.
#include <gtest/gtest.h>

#include "pipeline/pipeline_trainer.h"
#include "pipeline/schedule_verifier.h"
#include "runtime/mpi_transport.h"
#include "tests/test_models.h"

namespace baton {
namespace {

int g_microbatches = 4;  // per step; a test may lower it (fewer micro-batches than stages)
constexpr int kSteps = 3;
// Which model and objective: GPT-2 causal LM; RoFormer masked LM; RoFormerV2 UniLM seq2seq.
enum class Family { kGpt, kRoformerMlm, kRoformerV2Seq2Seq };
Family g_family = Family::kGpt;

ModelSpec Spec() {  // 8 list entries: enough for 4 stages x 2 virtual chunks
  if (g_family == Family::kGpt) return testing::TinyGpt(6, 16, 2, 48, 40, 48, 8);
  return testing::TinyRoformer(g_family == Family::kRoformerV2Seq2Seq, 6, 16, 2, 48, 40, 48, 8);
}

std::vector<MicroBatch> Batches(int step) {
  if (g_family == Family::kGpt) return testing::RandomMicroBatches(31, step, g_microbatches, 2, 8, 40);
  return testing::RandomMaskedMicroBatches(
      31, step, g_microbatches, 2, 8, 40,
      g_family == Family::kRoformerMlm ? testing::RandomObjective::kMaskedLm : testing::RandomObjective::kSeq2Seq);
}

TrainerOptions Options(RecomputePolicy recompute) {
  TrainerOptions o;
  o.lr.kind = LrScheduleKind::kConstant;
  o.lr.lr = 0.03;
  o.clip_grad_norm = 0.5;  // active: the norm must be the global one
  o.recompute = recompute;
  return o;
}

struct Reference {
  std::vector<StepMetrics> steps;
  Model model;
};

Reference TrainAlone() {
  Reference r{{}, Model::Build(Spec(), 17)};
  Adafactor opt(AdafactorOptions{});
  opt.AddParams(r.model.params());
  Trainer trainer(&r.model, &opt, Options(RecomputePolicy::kNone));
  for (int step = 1; step <= kSteps; ++step) r.steps.push_back(trainer.Step(step, Batches(step)).value());
  return r;
}

class PipelineEquivalence : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = NewMpiWorldTransport().release();
    reference_ = new Reference(TrainAlone());
  }

  void ExpectSameAsAlone(ScheduleKind kind, int virtual_stages, RecomputePolicy recompute) {
    const int stages = world_->size();
    SCOPED_TRACE(std::string(ScheduleKindName(kind)) + ", " + std::to_string(stages) + " stages x " +
                 std::to_string(virtual_stages) + " virtual, recompute " + RecomputePolicyName(recompute));
    StageLayout layout = BalancedStageLayout(Spec(), 8, stages, virtual_stages).value();
    PipelineSchedule schedule = BuildSchedule(kind, stages, g_microbatches, virtual_stages).value();
    ASSERT_TRUE(VerifySchedule(schedule).ok());
    PipelineTrainer trainer(Spec(), 17, layout, schedule, AdafactorOptions{}, Options(recompute), world_);
    for (int step = 1; step <= kSteps; ++step) {
      Result<StepMetrics> m = trainer.Step(step, Batches(step));
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      EXPECT_EQ(m->loss, reference_->steps[step - 1].loss) << "step " << step;
      EXPECT_EQ(m->grad_norm, reference_->steps[step - 1].grad_norm) << "step " << step;
    }
    for (Param* p : trainer.params()) {
      Param* want = reference_->model.FindParam(p->name);
      ASSERT_NE(want, nullptr) << p->name;
      EXPECT_EQ(p->value.ToDoubles(), want->value.ToDoubles()) << p->name << " differs on rank " << world_->rank();
    }
    const double val = trainer.Evaluate(Batches(99)).value();
    Adafactor unused(AdafactorOptions{});
    Trainer alone(&reference_->model, &unused, Options(RecomputePolicy::kNone));
    EXPECT_EQ(val, alone.Evaluate(Batches(99)));
  }

  static Transport* world_;
  static Reference* reference_;
};
Transport* PipelineEquivalence::world_ = nullptr;
Reference* PipelineEquivalence::reference_ = nullptr;

// Fewer micro-batches than stages: most of the step is bubble, the numbers are the same.
TEST_F(PipelineEquivalence, FewerMicroBatchesThanStages) {
  g_microbatches = 1;
  Reference alone = TrainAlone();
  std::swap(*reference_, alone);
  for (ScheduleKind kind : {ScheduleKind::kGPipe, ScheduleKind::k1F1B, ScheduleKind::kZeroBubbleH1})
    ExpectSameAsAlone(kind, 1, RecomputePolicy::kNone);
  std::swap(*reference_, alone);
  g_microbatches = 4;
}

TEST_F(PipelineEquivalence, TagsThatDoNotFitAreRefusedUpFront) {
  std::unique_ptr<Transport> capped = NewMpiWorldTransport(MpiTransportOptions{32767});
  PipelineSchedule ok = BuildSchedule(ScheduleKind::k1F1B, world_->size(), 64).value();
  EXPECT_TRUE(CheckScheduleTags(ok, *capped).ok());
  PipelineSchedule big = BuildSchedule(ScheduleKind::k1F1B, world_->size(), 20000).value();
  Status st = CheckScheduleTags(big, *capped);
  if (world_->size() * 2 * 20000 - 1 > 32767) {
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("train.microbatches = 20000"), std::string::npos) << st.message();
  }
}

// RoFormer with masked LM and RoFormerV2 with UniLM seq2seq: padded examples,
// per-example masks and positions without targets (so micro-batches hold
// different numbers of targets), bitwise the same on every layout.
TEST_F(PipelineEquivalence, RoformerMaskedLmAndV2Seq2Seq) {
  for (Family family : {Family::kRoformerMlm, Family::kRoformerV2Seq2Seq}) {
    g_family = family;
    Reference alone = TrainAlone();
    std::swap(*reference_, alone);
    ExpectSameAsAlone(ScheduleKind::k1F1B, 1, RecomputePolicy::kNone);
    ExpectSameAsAlone(ScheduleKind::kInterleaved1F1B, 2, RecomputePolicy::kSelective);
    ExpectSameAsAlone(ScheduleKind::kZeroBubbleH1, 1, RecomputePolicy::kFull);
    std::swap(*reference_, alone);
  }
  g_family = Family::kGpt;
}

TEST_F(PipelineEquivalence, GPipe) { ExpectSameAsAlone(ScheduleKind::kGPipe, 1, RecomputePolicy::kNone); }
TEST_F(PipelineEquivalence, OneFOneB) { ExpectSameAsAlone(ScheduleKind::k1F1B, 1, RecomputePolicy::kNone); }
TEST_F(PipelineEquivalence, OneFOneBSelectiveRecompute) {
  ExpectSameAsAlone(ScheduleKind::k1F1B, 1, RecomputePolicy::kSelective);
}
TEST_F(PipelineEquivalence, OneFOneBFullRecompute) { ExpectSameAsAlone(ScheduleKind::k1F1B, 1, RecomputePolicy::kFull); }
TEST_F(PipelineEquivalence, Interleaved) {
  ExpectSameAsAlone(ScheduleKind::kInterleaved1F1B, 2, RecomputePolicy::kNone);
}
TEST_F(PipelineEquivalence, ZeroBubble) { ExpectSameAsAlone(ScheduleKind::kZeroBubbleH1, 1, RecomputePolicy::kNone); }
TEST_F(PipelineEquivalence, ZeroBubbleFullRecompute) {
  ExpectSameAsAlone(ScheduleKind::kZeroBubbleH1, 1, RecomputePolicy::kFull);
}

}  // namespace
}  // namespace baton
