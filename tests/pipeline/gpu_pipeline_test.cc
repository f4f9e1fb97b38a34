// Pipeline stages and data-parallel replicas on several GPUs over NCCL, under
// mpirun with 2 and 4 ranks, one GPU each (label gpu; skipped without enough
// GPUs). Every rank also trains the same model alone on its GPU with the
// whole global batch (the single-GPU Trainer):
//   - pipeline stages only: losses, gradient norms and every weight the rank
//     holds are bitwise those of the single GPU (the kernels are
//     deterministic and every step is arithmetically the same);
//   - with replicas: the replicas' gradients are summed in another order, so
//     agreement is to rounding, and every replica holds bitwise the same
//     weights.
// The groups come from ConnectRanks, the bootstrap `baton train` uses.
#include <gtest/gtest.h>

#include <cmath>

#include "launch/rank_groups.h"
#include "pipeline/pipeline_trainer.h"
#include "pipeline/schedule_verifier.h"
#include "runtime/mpi_world.h"
#include "tests/test_models.h"

namespace baton {
namespace {

constexpr int kMicrobatchesPerReplica = 4;
constexpr int kSteps = 4;

// Head size 64 (the GPU attention kernel's); 8 layer-list entries for 4 stages x 2 chunks.
ModelSpec Spec() { return testing::TinyGpt(6, 128, 2, 512, 500, 512, 64); }

std::vector<MicroBatch> GlobalBatch(int step, int count) {
  return testing::RandomMicroBatches(83, static_cast<uint64_t>(step), count, 2, 64, 500);
}

TrainerOptions Options(Device device) {
  TrainerOptions o;
  o.lr.kind = LrScheduleKind::kConstant;
  o.lr.lr = 1e-2;
  o.clip_grad_norm = 0.5;  // active: the norm must be the global one
  o.device = device;
  return o;
}

class GpuPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    const MpiWorld& world = MpiWorld::Init(nullptr, nullptr);
    if (CudaDeviceCount() < world.local_size())
      GTEST_SKIP() << "needs one GPU per rank: " << world.local_size() << " ranks, " << CudaDeviceCount() << " GPU(s)";
    UseCudaDevice(world.local_rank());
    gpu_ = Device::CUDA(world.local_rank());
    world_size_ = world.size();
  }

  void ExpectLikeOneGpu(int stages, ScheduleKind kind = ScheduleKind::k1F1B, int virtual_stages = 1) {
    const int replicas = world_size_ / stages;
    SCOPED_TRACE(std::string(ScheduleKindName(kind)) + ", " + std::to_string(stages) + " stages x " +
                 std::to_string(virtual_stages) + " virtual x " + std::to_string(replicas) + " replicas");
    Result<RankGroups> groups = ConnectRanks(gpu_, stages, 120);
    ASSERT_TRUE(groups.ok()) << groups.status().ToString();
    const int stage = groups->pipe->rank(), replica = groups->replicas->rank();
    const bool bitwise = replicas == 1;

    Model alone = Model::Build(Spec(), 5, DType::kBF16, gpu_);
    Adafactor opt(AdafactorOptions{});
    opt.AddParams(alone.params());
    Trainer reference(&alone, &opt, Options(gpu_));

    StageLayout layout = BalancedStageLayout(Spec(), 8, stages, virtual_stages).value();
    PipelineSchedule schedule = BuildSchedule(kind, stages, kMicrobatchesPerReplica, virtual_stages).value();
    ASSERT_TRUE(CheckStreamOrderedExchange(schedule).ok());
    PipelineTrainer trainer(Spec(), 5, layout, schedule, AdafactorOptions{}, Options(gpu_), groups->pipe.get(),
                            groups->replicas.get());
    for (int step = 1; step <= kSteps; ++step) {
      std::vector<MicroBatch> all = GlobalBatch(step, kMicrobatchesPerReplica * replicas);
      const StepMetrics want = reference.Step(step, all).value();
      std::vector<MicroBatch> mine(all.begin() + replica * kMicrobatchesPerReplica,
                                   all.begin() + (replica + 1) * kMicrobatchesPerReplica);
      Result<StepMetrics> got = trainer.Step(step, mine);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      if (bitwise) {
        EXPECT_EQ(got->loss, want.loss) << "step " << step;
        EXPECT_EQ(got->grad_norm, want.grad_norm) << "step " << step;
      } else {
        // Reordered fp32 gradient sums move a few bf16 roundings of the weights.
        EXPECT_NEAR(got->loss, want.loss, 2e-3 * want.loss) << "step " << step;
        EXPECT_NEAR(got->grad_norm, want.grad_norm, 2e-2 * want.grad_norm) << "step " << step;
      }
    }
    for (Param* p : trainer.params()) {
      const std::vector<double> got = p->value.ToDoubles(), want = alone.FindParam(p->name)->value.ToDoubles();
      if (bitwise) {
        EXPECT_EQ(got, want) << p->name << " differs on stage " << stage;
        continue;
      }
      // Relative to the tensor's scale, plus what AdaFactor does with an element whose gradient is
      // rounding noise (the key bias: softmax ignores it): it moves by about rate x eps2 per step,
      // either way, as the noise's sign says.
      const double noise = kSteps * 2 * Options(gpu_).lr.lr * AdafactorOptions{}.eps2;
      double worst = 0, scale = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        worst = std::max(worst, std::fabs(got[i] - want[i]));
        scale = std::max(scale, std::fabs(want[i]));
      }
      EXPECT_LE(worst, 2e-2 * scale + noise) << p->name;
    }
    // Replicas hold the same weights, bitwise (the owners broadcast them).
    for (Param* p : trainer.params()) {
      Tensor copy = p->value.Clone();
      ASSERT_TRUE(groups->replicas->Broadcast(&copy, 0).ok());
      EXPECT_EQ(copy.ToDoubles(), p->value.ToDoubles()) << p->name << " differs between replicas";
    }
    const double val = trainer.Evaluate(GlobalBatch(99, 3)).value();
    const double want_val = reference.Evaluate(GlobalBatch(99, 3));
    if (bitwise) EXPECT_EQ(val, want_val);
    else EXPECT_NEAR(val, want_val, 2e-3 * want_val);
  }

  Device gpu_;
  int world_size_ = 1;
};

TEST_F(GpuPipeline, AllRanksAreStagesOneF1B) { ExpectLikeOneGpu(world_size_); }

TEST_F(GpuPipeline, AllRanksAreStagesZeroBubble) { ExpectLikeOneGpu(world_size_, ScheduleKind::kZeroBubbleH1); }

TEST_F(GpuPipeline, InterleavedTwoChunksPerRank) { ExpectLikeOneGpu(world_size_, ScheduleKind::kInterleaved1F1B, 2); }

TEST_F(GpuPipeline, AllRanksAreReplicas) { ExpectLikeOneGpu(1); }

TEST_F(GpuPipeline, TwoStagesTimesReplicas) {
  // With 2 ranks this is AllRanksAreStagesOneF1B; no GTEST_SKIP, which would mark the whole run skipped.
  if (world_size_ % 2 == 0 && world_size_ >= 4) ExpectLikeOneGpu(2);
}

}  // namespace
}  // namespace baton
