// Recomputation policies and the split backward change memory, never numbers.
#include "pipeline/chunk_runner.h"

#include <gtest/gtest.h>

#include "layers/model.h"
#include "pipeline/trainer.h"
#include "tests/test_models.h"

namespace baton {
namespace {

ModelSpec Spec(PositionKind positions) { return testing::TinyGpt(3, 32, 4, 128, 60, 64, 32, positions); }

std::vector<MicroBatch> Batches(int step) { return testing::RandomMicroBatches(77, step, 3, 2, 32, 60); }

struct Outcome {
  std::vector<double> losses;
  std::vector<std::vector<double>> weights;
  int64_t peak_activation_bytes = 0;
};

Outcome Train(PositionKind positions, RecomputePolicy policy) {
  Model model = Model::Build(Spec(positions), 21);
  Adafactor opt(AdafactorOptions{});
  opt.AddParams(model.params());
  TrainerOptions options;
  options.recompute = policy;
  options.clip_grad_norm = 1.0;
  Trainer trainer(&model, &opt, options);
  Outcome o;
  for (int step = 1; step <= 3; ++step) {
    StepMetrics m = trainer.Step(step, Batches(step)).value();
    o.losses.push_back(m.loss);
    o.peak_activation_bytes = std::max(o.peak_activation_bytes, m.peak_activation_bytes);
  }
  for (Param* p : model.params()) o.weights.push_back(p->value.ToDoubles());
  return o;
}

TEST(Recompute, PoliciesGiveBitwiseIdenticalTrainingAndLessMemory) {
  for (auto positions : {PositionKind::kLearned, PositionKind::kRope}) {
    Outcome none = Train(positions, RecomputePolicy::kNone);
    Outcome selective = Train(positions, RecomputePolicy::kSelective);
    Outcome full = Train(positions, RecomputePolicy::kFull);
    EXPECT_EQ(none.losses, selective.losses);
    EXPECT_EQ(none.losses, full.losses);
    EXPECT_EQ(none.weights, selective.weights);
    EXPECT_EQ(none.weights, full.weights);
    EXPECT_LT(selective.peak_activation_bytes, none.peak_activation_bytes);
    EXPECT_LT(full.peak_activation_bytes, selective.peak_activation_bytes);
    std::printf("peak activation bytes (%s): none %ld, selective %ld, full %ld\n",
                positions == PositionKind::kRope ? "rope" : "learned", static_cast<long>(none.peak_activation_bytes),
                static_cast<long>(selective.peak_activation_bytes), static_cast<long>(full.peak_activation_bytes));
  }
}

// B now and W later (zero-bubble schedules) accumulates the same gradients as the fused backward.
TEST(ChunkRunner, SplitBackwardEqualsFused) {
  for (auto policy : {RecomputePolicy::kNone, RecomputePolicy::kSelective, RecomputePolicy::kFull}) {
    Model a = Model::Build(Spec(PositionKind::kRope), 4), b = Model::Build(Spec(PositionKind::kRope), 4);
    auto layers = [](const Model& m) {
      std::vector<Layer*> out;
      for (const auto& l : m.layers()) out.push_back(l.get());
      return out;
    };
    ChunkRunner fused(layers(a), policy), split(layers(b), policy);
    std::vector<MicroBatch> mbs = Batches(9);
    for (size_t i = 0; i < mbs.size(); ++i) {
      fused.Forward(static_cast<int>(i), mbs[i], Tensor());
      split.Forward(static_cast<int>(i), mbs[i], Tensor());
    }
    EXPECT_EQ(split.inflight(), 3);
    for (size_t i = 0; i < mbs.size(); ++i) {
      fused.Backward(static_cast<int>(i), mbs[i], Tensor());
      split.BackwardInput(static_cast<int>(i), mbs[i], Tensor());
    }
    for (size_t i = 0; i < mbs.size(); ++i) split.BackwardWeight(static_cast<int>(i), mbs[i]);
    EXPECT_EQ(split.inflight(), 0);
    a.FoldTiedGradients();
    b.FoldTiedGradients();
    for (Param* p : a.params())
      EXPECT_EQ(p->grad.ToDoubles(), b.FindParam(p->name)->grad.ToDoubles())
          << p->name << " (" << RecomputePolicyName(policy) << ")";
  }
}

}  // namespace
}  // namespace baton
