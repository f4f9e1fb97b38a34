// Data-parallel replicas of pipeline stages under mpirun: every split of the
// world into stages x replicas trains like one process with the global batch
// (replica r takes micro-batches [r M, (r+1) M) of it), to rounding (the
// replicas' gradients are summed in another order). AdaFactor state is
// sharded: each replica keeps a share of it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "pipeline/pipeline_trainer.h"
#include "pipeline/schedule_verifier.h"
#include "runtime/mpi_transport.h"
#include "tests/test_models.h"

namespace baton {
namespace {

constexpr int kMicrobatchesPerReplica = 2;
constexpr int kSteps = 3;

bool g_roformer = false;  // RoFormer with masked-LM batches instead of GPT+RoPE with causal LM

ModelSpec Spec() {
  return g_roformer ? testing::TinyRoformer(false, 4, 16, 2, 48, 40, 48, 8)
                    : testing::TinyGpt(4, 16, 2, 48, 40, 48, 8, PositionKind::kRope);
}

std::vector<MicroBatch> GlobalBatch(int step, int count) {
  return g_roformer ? testing::RandomMaskedMicroBatches(57, step, count, 2, 8, 40, testing::RandomObjective::kMaskedLm)
                    : testing::RandomMicroBatches(57, step, count, 2, 8, 40);
}

TrainerOptions Options() {
  TrainerOptions o;
  o.lr.kind = LrScheduleKind::kConstant;
  o.lr.lr = 0.03;
  o.clip_grad_norm = 0.5;
  return o;
}

void ExpectNear(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, 1e-6 * std::max(1.0, std::fabs(want))) << what;
}

class DataParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { world_ = NewMpiWorldTransport().release(); }

  // Trains with `stages` x (world / stages) replicas; returns this rank's AdaFactor bytes.
  int64_t ExpectLikeOneProcess(int stages, ScheduleKind kind = ScheduleKind::k1F1B, int virtual_stages = 1) {
    const int replicas = world_->size() / stages;
    const int replica = world_->rank() / stages, stage = world_->rank() % stages;
    SCOPED_TRACE(std::to_string(stages) + " stages x " + std::to_string(replicas) + " replicas");
    std::unique_ptr<Transport> pipe = world_->Split(replica, stage).value();
    std::unique_ptr<Transport> dp = world_->Split(stage, replica).value();
    const int global = kMicrobatchesPerReplica * replicas;

    Model alone = Model::Build(Spec(), 5);
    Adafactor opt(AdafactorOptions{});
    opt.AddParams(alone.params());
    Trainer reference(&alone, &opt, Options());

    StageLayout layout = BalancedStageLayout(Spec(), 8, stages, virtual_stages).value();
    PipelineSchedule schedule = BuildSchedule(kind, stages, kMicrobatchesPerReplica, virtual_stages).value();
    PipelineTrainer trainer(Spec(), 5, layout, schedule, AdafactorOptions{}, Options(), pipe.get(), dp.get());
    for (int step = 1; step <= kSteps; ++step) {
      std::vector<MicroBatch> all = GlobalBatch(step, global);
      const StepMetrics want = reference.Step(step, all).value();
      std::vector<MicroBatch> mine(all.begin() + replica * kMicrobatchesPerReplica,
                                   all.begin() + (replica + 1) * kMicrobatchesPerReplica);
      Result<StepMetrics> got = trainer.Step(step, mine);
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (!got.ok()) return 0;
      ExpectNear(got->loss, want.loss, "loss at step " + std::to_string(step));
      ExpectNear(got->grad_norm, want.grad_norm, "gradient norm at step " + std::to_string(step));
    }
    for (Param* p : trainer.params()) {
      const auto got = p->value.ToDoubles(), want = alone.FindParam(p->name)->value.ToDoubles();
      for (size_t i = 0; i < got.size(); ++i) ExpectNear(got[i], want[i], p->name);
    }
    // Every replica of a stage holds the same weights, bitwise (owners broadcast them).
    for (Param* p : trainer.params()) {
      Tensor copy = p->value.Clone();
      EXPECT_TRUE(dp->Broadcast(&copy, 0).ok());
      EXPECT_EQ(copy.ToDoubles(), p->value.ToDoubles()) << p->name;
    }
    // 3 evaluation batches: not a multiple of the replicas.
    ExpectNear(trainer.Evaluate(GlobalBatch(77, 3)).value(), reference.Evaluate(GlobalBatch(77, 3)), "validation");
    ExpectTiedTablesEqual(trainer, pipe.get(), stages);
    return trainer.OptimizerStateBytes();
  }

  // The first and last stage hold their own copies of the tied table: bitwise equal.
  static void ExpectTiedTablesEqual(const PipelineTrainer& trainer, Transport* pipe, int stages) {
    if (stages < 2) return;
    const int rank = pipe->rank();
    if (rank != 0 && rank != stages - 1) return;
    Param* mine = nullptr;
    for (Param* p : trainer.params())
      if (p->name == "wte") mine = p;
    ASSERT_NE(mine, nullptr);
    Tensor theirs = Tensor::Empty(mine->value.shape(), mine->value.dtype());
    const int peer = rank == 0 ? stages - 1 : 0;
    ASSERT_TRUE(pipe->Exchange({P2POp::Send(peer, 3, mine->value), P2POp::Recv(peer, 3, theirs)}).ok());
    EXPECT_EQ(theirs.ToDoubles(), mine->value.ToDoubles()) << "tied tables differ between the first and last stage";
  }

  static Transport* world_;
};
Transport* DataParallel::world_ = nullptr;

TEST_F(DataParallel, OneStageAllReplicas) {
  const int64_t bytes = ExpectLikeOneProcess(1);
  // The replicas share the state: together they hold exactly what one replica alone would.
  Model m = Model::Build(Spec(), 5);
  Adafactor whole(AdafactorOptions{});
  whole.AddParams(m.params());
  std::vector<double> total{static_cast<double>(bytes)};
  ASSERT_TRUE(world_->AllReduceSum(&total).ok());
  EXPECT_EQ(static_cast<int64_t>(total[0]), whole.StateBytes());
  if (world_->size() > 1) {
    EXPECT_LT(bytes, whole.StateBytes());
  }
  if (world_->rank() == 0) {
    std::printf("AdaFactor state bytes on rank 0 with %d replica(s): %ld (one replica alone: %ld)\n", world_->size(),
                static_cast<long>(bytes), static_cast<long>(whole.StateBytes()));
  }
}

TEST_F(DataParallel, TwoStagesTimesReplicas) {
  if (world_->size() % 2 != 0) GTEST_SKIP() << "needs an even number of ranks";
  ExpectLikeOneProcess(2);
}

TEST_F(DataParallel, InterleavedStagesTimesReplicas) {
  if (world_->size() % 2 != 0) GTEST_SKIP() << "needs an even number of ranks";
  ExpectLikeOneProcess(2, ScheduleKind::kInterleaved1F1B, 2);
}

// Masked LM: replicas hold different numbers of targets, and the step's loss is the
// mean over all of them, as in one process.
TEST_F(DataParallel, RoformerMaskedLmTimesReplicas) {
  g_roformer = true;
  ExpectLikeOneProcess(1);
  if (world_->size() % 2 == 0) ExpectLikeOneProcess(2);
  g_roformer = false;
}

TEST_F(DataParallel, OneStageTwoVirtualChunksTimesReplicas) {
  ExpectLikeOneProcess(1, ScheduleKind::kInterleaved1F1B, 2);
}

}  // namespace
}  // namespace baton
