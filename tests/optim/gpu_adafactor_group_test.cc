// Adafactor::Step on GPU parameters updates them all together
// (cuda::AdafactorCudaGroup: one launch per stage for a whole batch of
// parameters). It must give the same bits as the per-parameter path
// (AdafactorUpdate on each parameter, one launch per stage per parameter),
// whose agreement with the CPU reference gpu_adafactor_test.cc checks; here the
// CPU is compared as well, with that file's tolerances.
//
// Every test needs a GPU and reports itself skipped without one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "optim/adafactor.h"
#include "runtime/rng.h"
#include "tests/gpu_test.h"
#include "tests/optim/random_inputs.h"

namespace baton {
namespace {

constexpr uint64_t kSeed = 20250117;

Device Gpu() { return Device::CUDA(0); }

std::vector<double> Draw(const std::string& stream, int64_t count, double scale) {
  return testing::DrawNonZero(kSeed, stream, count, scale);
}
using testing::HostTensor;

std::vector<std::pair<std::string, const Tensor*>> StateParts(const AdafactorState& s) {
  std::vector<std::pair<std::string, const Tensor*>> parts;
  if (s.row.defined()) parts.push_back({"row", &s.row});
  if (s.col.defined()) parts.push_back({"col", &s.col});
  if (s.full.defined()) parts.push_back({"full", &s.full});
  if (s.momentum.defined()) parts.push_back({"momentum", &s.momentum});
  return parts;
}

// Same shape, dtype and bytes.
bool SameBits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ha = a.To(Device::CPU()), hb = b.To(Device::CPU());
  return std::memcmp(ha.raw(), hb.raw(), ha.nbytes()) == 0;
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

struct Spec {
  Shape shape;
  DType dtype;
};

// Three copies of the same parameters: `grouped` (GPU, Adafactor::Step),
// `single` (GPU, AdafactorUpdate per parameter) and `host` (the CPU reference).
class ThreeWay {
 public:
  ThreeWay(const std::string& tag, const AdafactorOptions& o, const std::vector<Spec>& specs)
      : tag_(tag), o_(o), grouped_opt_(o), host_opt_(o) {
    Add(specs);
  }

  void Add(const std::vector<Spec>& specs) {
    std::vector<Param*> g, h;
    for (const Spec& s : specs) {
      const std::string name = "p" + std::to_string(specs_.size());
      const Tensor x0 = HostTensor(s.shape, Draw(tag_ + name + ".x", NumElements(s.shape), 0.3), s.dtype);
      host_.push_back(std::make_unique<Param>(name, x0));
      grouped_.push_back(std::make_unique<Param>(name, x0.To(Gpu())));
      single_.push_back(std::make_unique<Param>(name, x0.To(Gpu())));
      single_state_.push_back(NewAdafactorState(o_, s.shape, s.dtype, Gpu()));
      single_stats_.emplace_back();
      g.push_back(grouped_.back().get());
      h.push_back(host_.back().get());
      specs_.push_back(s);
    }
    grouped_opt_.AddParams(g);
    host_opt_.AddParams(h);
  }

  // Fresh gradients for step t, the same in all three.
  void SetGrads(int t) {
    for (size_t i = 0; i < specs_.size(); ++i) {
      const Shape& shape = specs_[i].shape;
      const Tensor g =
          HostTensor(shape, Draw(tag_ + host_[i]->name + ".g" + std::to_string(t), NumElements(shape), 0.05 * t),
                     specs_[i].dtype);
      host_[i]->grad.CopyFrom(g);
      grouped_[i]->grad.CopyFrom(g);
      single_[i]->grad.CopyFrom(g);
    }
  }

  static double RateAt(int t) { return 3 * std::min(1e-2, 1 / std::sqrt(static_cast<double>(t))); }

  void StepGrouped(int t) { grouped_opt_.Step(t, RateAt(t)); }

  void StepOthers(int t) {
    for (size_t i = 0; i < specs_.size(); ++i)
      AdafactorUpdate(o_, *single_[i], single_state_[i], t, RateAt(t), &single_stats_[i]);
    host_opt_.Step(t, RateAt(t));
  }

  // Grouped == single bitwise; both near the CPU.
  void Compare(int t) {
    SCOPED_TRACE(tag_ + " step " + std::to_string(t));
    int64_t cpu_equal = 0, cpu_total = 0;
    for (size_t i = 0; i < specs_.size(); ++i) {
      const std::string& name = host_[i]->name;
      SCOPED_TRACE(name + " " + ShapeString(specs_[i].shape) + " " + DTypeName(specs_[i].dtype));
      const double rel = specs_[i].dtype == DType::kF64 ? 1e-10 : 1e-5;
      EXPECT_TRUE(SameBits(grouped_[i]->value, single_[i]->value)) << "value";
      const auto gp = StateParts(grouped_opt_.state(name)), sp = StateParts(single_state_[i]);
      ASSERT_EQ(gp.size(), sp.size());
      for (size_t k = 0; k < gp.size(); ++k) EXPECT_TRUE(SameBits(*gp[k].second, *sp[k].second)) << gp[k].first;

      const auto gs = grouped_opt_.last_stats(name);
      const auto ss = AdafactorStatsFromDevice(single_stats_[i]);
      const auto& hs = host_opt_.last_stats(name);
      ASSERT_EQ(gs.size(), ss.size());
      ASSERT_EQ(gs.size(), hs.size());
      for (size_t k = 0; k < gs.size(); ++k) {
        EXPECT_TRUE(SameBits(gs[k].alpha, ss[k].alpha) && SameBits(gs[k].update_rms, ss[k].update_rms) &&
                    SameBits(gs[k].param_rms, ss[k].param_rms))
            << "statistics of slice " << k;
        EXPECT_NEAR(gs[k].update_rms, hs[k].update_rms, 10 * rel * std::abs(hs[k].update_rms)) << k;
        EXPECT_NEAR(gs[k].param_rms, hs[k].param_rms, 10 * rel * std::abs(hs[k].param_rms)) << k;
      }

      const auto gv = grouped_[i]->value.ToDoubles(), hv = host_[i]->value.ToDoubles();
      double ss2 = 0;
      for (double v : hv) ss2 += v * v;
      const double floor = hv.empty() ? 0 : 1e-3 * std::sqrt(ss2 / static_cast<double>(hv.size()));
      for (size_t k = 0; k < hv.size(); ++k) {
        ASSERT_LE(std::abs(gv[k] - hv[k]), rel * std::max(std::abs(hv[k]), floor)) << "value " << k;
        cpu_equal += gv[k] == hv[k];
      }
      cpu_total += static_cast<int64_t>(hv.size());
    }
    std::printf("%s step %d: %zu tensors, grouped == per-tensor; %lld of %lld values bitwise equal to the CPU\n",
                tag_.c_str(), t, specs_.size(), static_cast<long long>(cpu_equal), static_cast<long long>(cpu_total));
  }

  Adafactor& grouped_opt() { return grouped_opt_; }
  AdafactorState& single_state(size_t i) { return single_state_[i]; }
  const std::string& name(size_t i) const { return host_[i]->name; }

 private:
  std::string tag_;
  AdafactorOptions o_;
  std::vector<Spec> specs_;
  std::vector<std::unique_ptr<Param>> host_, grouped_, single_;
  std::vector<AdafactorState> single_state_;
  std::vector<Tensor> single_stats_;
  Adafactor grouped_opt_, host_opt_;
};

// Matrices factored and not (min_dim_to_factor = 8), stacked, vectors,
// scalars, empty tensors, f32 and f64 in one optimizer.
std::vector<Spec> MixedSpecs() {
  const DType f = DType::kF32, d = DType::kF64;
  return {{{77, 50}, f},       {{5, 700}, f},      {{700, 5}, f},    {{1031, 517}, f}, {{3, 40, 24}, f},
          {{2, 3, 17, 33}, f}, {{777}, f},         {{1}, f},         {{}, f},          {{0}, f},
          {{3, 0, 4}, f},      {{100003}, f},      {{4, 8, 8}, f},   {{2, 3}, f},      {{40, 9}, d},
          {{513}, d},          {{2, 7, 5}, d},     {{64, 300}, f},   {{300, 64}, f},   {{9, 9}, f}};
}

TEST(GpuAdafactorGroup, MixedStepMatchesPerTensorUpdates) {
  BATON_REQUIRE_GPU();
  AdafactorOptions plain;
  plain.min_dim_to_factor = 8;
  AdafactorOptions all = plain;
  all.beta1 = 0.9;
  all.weight_decay = 0.05;
  all.clip_threshold = 0.5;
  AdafactorOptions noscale = plain;
  noscale.scale_parameter = false;
  noscale.clip_threshold = 0;
  const std::vector<std::pair<std::string, AdafactorOptions>> cases = {
      {"mixed", plain}, {"mixed.beta1.wd.clip", all}, {"mixed.noscale.noclip", noscale}};
  for (const auto& [tag, o] : cases) {
    ThreeWay w(tag, o, MixedSpecs());
    for (int t = 1; t <= 4; ++t) {
      w.SetGrads(t);
      w.StepGrouped(t);
      w.StepOthers(t);
      w.Compare(t);
    }
    EXPECT_EQ(w.grouped_opt().device_table_builds(), 1) << tag;
  }
}

// 200 tiny tensors (the biases and norm gains of a model): one group, the
// same bits, and after the first step neither allocations nor table rebuilds.
TEST(GpuAdafactorGroup, TwoHundredTinyTensors) {
  BATON_REQUIRE_GPU();
  const std::vector<Shape> shapes = {{1}, {2}, {3}, {2, 3}, {3, 2}, {1, 1}, {4, 5}, {7}, {2, 2, 2}, {5, 1}};
  std::vector<Spec> specs;
  for (int i = 0; i < 200; ++i) specs.push_back({shapes[static_cast<size_t>(i) % shapes.size()], DType::kF32});
  AdafactorOptions o;
  o.beta1 = 0.9;
  ThreeWay w("tiny", o, specs);
  const Allocator& gpu = AllocatorFor(Gpu());
  for (int t = 1; t <= 4; ++t) {
    w.SetGrads(t);
    const MemoryStats before = gpu.Stats();
    w.StepGrouped(t);
    const MemoryStats after = gpu.Stats();
    if (t > 1) {
      EXPECT_EQ(after.allocations, before.allocations) << "Step allocated at step " << t;
      EXPECT_EQ(after.device_allocations, before.device_allocations) << "Step reached cudaMalloc at step " << t;
    }
    w.StepOthers(t);
    w.Compare(t);
  }
  EXPECT_EQ(w.grouped_opt().device_table_builds(), 1);
}

// The device table follows the parameters: new parameters, and state
// replaced through mutable_state (as a checkpoint loader may), rebuild it.
TEST(GpuAdafactorGroup, RebuildsWhenTensorsChange) {
  BATON_REQUIRE_GPU();
  AdafactorOptions o;
  o.min_dim_to_factor = 8;
  o.beta1 = 0.5;
  ThreeWay w("rebuild", o, {{{77, 50}, DType::kF32}, {{300}, DType::kF32}, {{3, 9, 17}, DType::kF64}});
  int t = 1;
  for (; t <= 2; ++t) {
    w.SetGrads(t);
    w.StepGrouped(t);
    w.StepOthers(t);
    w.Compare(t);
  }
  EXPECT_EQ(w.grouped_opt().device_table_builds(), 1);

  w.Add({{{5, 700}, DType::kF32}, {{1}, DType::kF32}});
  w.SetGrads(t);
  w.StepGrouped(t);
  w.StepOthers(t);
  w.Compare(t++);
  EXPECT_EQ(w.grouped_opt().device_table_builds(), 2);

  // Same values in new buffers: the table must point at the new ones.
  AdafactorState& s0 = w.grouped_opt().mutable_state(w.name(0));
  s0.row = s0.row.Clone();
  s0.momentum = s0.momentum.Clone();
  AdafactorState& s1 = w.grouped_opt().mutable_state(w.name(1));
  s1.full = s1.full.Clone();
  for (int k = 0; k < 2; ++k, ++t) {
    w.SetGrads(t);
    w.StepGrouped(t);
    w.StepOthers(t);
    w.Compare(t);
  }
  EXPECT_EQ(w.grouped_opt().device_table_builds(), 3);
}

}  // namespace
}  // namespace baton
