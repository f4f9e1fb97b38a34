// Training on the GPU against the CPU reference: the first steps' losses agree
// within bf16 tolerance, GPU runs are deterministic, recomputation changes no
// bit, and steady-state steps do not allocate device memory.
#include <gtest/gtest.h>

#include <cmath>

#include "pipeline/trainer.h"
#include "tests/gpu_test.h"
#include "tests/test_models.h"

namespace baton {
namespace {

// Head size 64, as the GPU attention kernel needs; a vocabulary with padding rows.
ModelSpec Spec() { return testing::TinyGpt(2, 128, 2, 512, 500, 512, 64); }

struct TrainingRun {
  std::vector<double> losses, norms;
  std::vector<int64_t> device_allocations;
};

struct BatchShape {
  int64_t batch = 4, seq = 64;
};

TrainingRun Train(Device device, RecomputePolicy recompute, int steps, const ModelSpec& spec = Spec(),
                  BatchShape shape = {}) {
  Model model = Model::Build(spec, 11, ComputeTypeFor(device), device);
  Adafactor optimizer(AdafactorOptions{});
  optimizer.AddParams(model.params());
  LrScheduleOptions lr;
  lr.kind = LrScheduleKind::kConstant;
  lr.lr = 1e-2;
  Trainer trainer(&model, &optimizer, TrainerOptions{lr, 1.0, recompute, device});
  TrainingRun run;
  for (int s = 1; s <= steps; ++s) {
    // Fresh tokens every step; a learnable rule so that the loss falls.
    std::vector<MicroBatch> mbs =
        testing::RandomMicroBatches(77, static_cast<uint64_t>(s), 2, shape.batch, shape.seq, spec.vocab);
    for (MicroBatch& mb : mbs)
      for (int64_t i = 0; i < mb.tokens.numel(); ++i)
        mb.targets.data<int32_t>()[i] = (mb.tokens.data<int32_t>()[i] * 7 + 3) % static_cast<int32_t>(spec.vocab);
    Result<StepMetrics> m = trainer.Step(s, std::move(mbs));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) break;
    run.losses.push_back(m->loss);
    run.norms.push_back(m->grad_norm);
    run.device_allocations.push_back(m->memory.device_allocations);
  }
  return run;
}

TEST(GpuTraining, FirstTenLossesMatchTheCpuReferenceWithinBf16Tolerance) {
  BATON_REQUIRE_GPU();
  const TrainingRun cpu = Train(Device::CPU(), RecomputePolicy::kNone, 10);
  const TrainingRun gpu = Train(Device::CUDA(0), RecomputePolicy::kNone, 10);
  ASSERT_EQ(gpu.losses.size(), 10u);
  for (size_t i = 0; i < cpu.losses.size(); ++i) {
    // bf16 activations carry ~3 significant digits; over ten steps of training the
    // loss (about ln 500 = 6.2 at first) stays within 1% of the fp32 reference.
    EXPECT_NEAR(gpu.losses[i], cpu.losses[i], 0.01 * cpu.losses[i]) << "step " << i + 1;
    EXPECT_NEAR(gpu.norms[i], cpu.norms[i], 0.05 * cpu.norms[i]) << "step " << i + 1;
  }
  EXPECT_LT(gpu.losses.back(), gpu.losses.front() - 0.1) << "the GPU run learns";
}

TEST(GpuTraining, Gpt2SmallFirstTenLossesMatchTheCpuReference) {
  BATON_REQUIRE_GPU();
  // GPT-2 124M itself (12 layers, hidden 768, 12 heads, GPT-2's vocabulary), on
  // 2 micro-batches of 2 x 128 tokens so that the CPU reference takes seconds.
  const ModelSpec spec = testing::TinyGpt(12, 768, 12, 3072, 50257, 50304, 1024);
  const TrainingRun cpu = Train(Device::CPU(), RecomputePolicy::kNone, 10, spec, {2, 128});
  const TrainingRun gpu = Train(Device::CUDA(0), RecomputePolicy::kNone, 10, spec, {2, 128});
  ASSERT_EQ(gpu.losses.size(), 10u);
  for (size_t i = 0; i < cpu.losses.size(); ++i) {
    EXPECT_NEAR(gpu.losses[i], cpu.losses[i], 0.01 * cpu.losses[i]) << "step " << i + 1;
    EXPECT_NEAR(gpu.norms[i], cpu.norms[i], 0.05 * cpu.norms[i]) << "step " << i + 1;
  }
}

TEST(GpuTraining, TwoRunsWithTheSameSeedAreBitwiseEqual) {
  BATON_REQUIRE_GPU();
  const TrainingRun a = Train(Device::CUDA(0), RecomputePolicy::kNone, 4);
  const TrainingRun b = Train(Device::CUDA(0), RecomputePolicy::kNone, 4);
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_EQ(a.norms, b.norms);
}

TEST(GpuTraining, RecomputationChangesNoBit) {
  BATON_REQUIRE_GPU();
  const TrainingRun none = Train(Device::CUDA(0), RecomputePolicy::kNone, 3);
  for (RecomputePolicy p : {RecomputePolicy::kSelective, RecomputePolicy::kFull}) {
    const TrainingRun r = Train(Device::CUDA(0), p, 3);
    EXPECT_EQ(r.losses, none.losses) << RecomputePolicyName(p);
    EXPECT_EQ(r.norms, none.norms) << RecomputePolicyName(p);
  }
}

TEST(GpuTraining, SteadyStateStepsDoNotReachCudaMalloc) {
  BATON_REQUIRE_GPU();
  const TrainingRun r = Train(Device::CUDA(0), RecomputePolicy::kNone, 5);
  ASSERT_EQ(r.device_allocations.size(), 5u);
  // The first steps fill the cache (and the workspaces); after that every size is reused.
  EXPECT_EQ(r.device_allocations[4], r.device_allocations[2]);
}

}  // namespace
}  // namespace baton
