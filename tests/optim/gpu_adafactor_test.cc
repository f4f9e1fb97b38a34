// AdaFactor on the GPU (optim/cuda/adafactor_update.cu) against the CPU
// reference (the host path of optim/adafactor.cc, itself checked against the
// paper's formulas in adafactor_test.cc): the same parameters and gradients,
// updated for several steps by an optimizer on host Params and one on GPU
// Params, compared after every step.
//
// Tolerance (fp32): parameters and every state tensor (R, C, V, momentum) are
// compared per element, relative:
//   |gpu - cpu| <= 1e-5 * max(|cpu|, 1e-3 * RMS(cpu tensor)).
// The floor (1e-3 of the tensor's RMS) only matters for elements a thousand
// times smaller than their neighbours (a momentum element passing through
// zero), where a one-ulp difference upstream is a large relative one. The GPU
// evaluates the same double expressions as the CPU and only sums in another
// order, so in practice fp32 results agree to the last bit (measured on an
// H100: every fp32 value of every case here bitwise equal); the summary line
// of each case prints the largest relative difference and how many values are
// bitwise equal. Statistics (alpha, RMS(U), RMS(X)): relative 1e-6. fp64
// parameters: 1e-10 for both (the sums' order shows at about 1e-12 there).
//
// Every test needs a GPU and reports itself skipped without one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "optim/adafactor.h"
#include "optim/grad_clip.h"
#include "runtime/rng.h"
#include "tests/gpu_test.h"
#include "tests/optim/random_inputs.h"

namespace baton {
namespace {

constexpr uint64_t kSeed = 20240923;

Device Gpu() { return Device::CUDA(0); }

std::vector<double> Draw(const std::string& stream, int64_t count, double scale) {
  return testing::DrawNonZero(kSeed, stream, count, scale);
}
using testing::HostTensor;

// Leading (slice) count of a shape as AdaFactor sees it.
int64_t SlicesOf(const Shape& shape) {
  int64_t s = 1;
  for (size_t i = 0; i + 2 < shape.size(); ++i) s *= shape[i];
  return s;
}

// Slice l of a stacked tensor scaled by 10^(sign * (l - 1)): slices of very
// different scale, so that statistics shared across slices would show.
void ScaleSlices(const Shape& shape, std::vector<double>& v, double sign) {
  const int64_t slices = SlicesOf(shape);
  if (slices <= 1) return;
  const size_t per = v.size() / static_cast<size_t>(slices);
  for (int64_t l = 0; l < slices; ++l)
    for (size_t k = 0; k < per; ++k) v[static_cast<size_t>(l) * per + k] *= std::pow(10.0, sign * (l % 3 - 1));
}

struct Diff {
  double max_rel = 0;  // largest |gpu - cpu| / max(|cpu|, floor)
  int64_t equal = 0, total = 0;
};

// Per-element relative comparison with the floor described at the top.
Diff Compare(const std::vector<double>& gpu, const std::vector<double>& cpu, double rel, const std::string& what) {
  Diff d;
  EXPECT_EQ(gpu.size(), cpu.size()) << what;
  if (gpu.size() != cpu.size()) return d;
  double ss = 0;
  for (double c : cpu) ss += c * c;
  const double floor = cpu.empty() ? 0.0 : 1e-3 * std::sqrt(ss / static_cast<double>(cpu.size()));
  int failures = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double scale = std::max(std::abs(cpu[i]), floor);
    const double err = std::abs(gpu[i] - cpu[i]);
    d.max_rel = std::max(d.max_rel, scale > 0 ? err / scale : err);
    d.equal += gpu[i] == cpu[i];
    ++d.total;
    if (!(err <= rel * scale) && failures++ < 5)
      ADD_FAILURE() << what << " element " << i << ": gpu " << gpu[i] << ", cpu " << cpu[i] << " (relative "
                    << err / scale << ", tolerance " << rel << ")";
  }
  return d;
}

void ExpectStatsNear(const std::vector<AdafactorSliceStats>& gpu, const std::vector<AdafactorSliceStats>& cpu,
                     double rel, const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_NEAR(gpu[i].alpha, cpu[i].alpha, rel * std::abs(cpu[i].alpha)) << what << " slice " << i;
    EXPECT_NEAR(gpu[i].update_rms, cpu[i].update_rms, rel * std::abs(cpu[i].update_rms)) << what << " slice " << i;
    EXPECT_NEAR(gpu[i].param_rms, cpu[i].param_rms, rel * std::abs(cpu[i].param_rms)) << what << " slice " << i;
  }
}

// The state tensors that exist, by name.
std::vector<std::pair<std::string, const Tensor*>> StateParts(const AdafactorState& s) {
  std::vector<std::pair<std::string, const Tensor*>> parts;
  if (s.row.defined()) parts.push_back({"row", &s.row});
  if (s.col.defined()) parts.push_back({"col", &s.col});
  if (s.full.defined()) parts.push_back({"full", &s.full});
  if (s.momentum.defined()) parts.push_back({"momentum", &s.momentum});
  return parts;
}

double RateAt(int t) { return 3 * std::min(1e-2, 1 / std::sqrt(static_cast<double>(t))); }

// Gradient of step t for a case: fresh draws whose scale changes with t.
std::vector<double> GradAt(const std::string& tag, const Shape& shape, int t) {
  std::vector<double> g = Draw(tag + ".g" + std::to_string(t), NumElements(shape), 0.05 * t);
  ScaleSlices(shape, g, +1);
  return g;
}

struct CaseResult {
  int clipped_steps = 0;  // steps at which RMS(U) / d > 1 in some slice (CPU statistics)
  std::vector<std::vector<AdafactorSliceStats>> stats;  // GPU, per step
};

// `steps` steps of one parameter on the CPU and on the GPU, compared after each.
CaseResult CompareWithCpu(const std::string& tag, const Shape& shape, const AdafactorOptions& o, int steps = 5,
                          DType dtype = DType::kF32) {
  SCOPED_TRACE(tag + " " + ShapeString(shape));
  const double rel = dtype == DType::kF64 ? 1e-10 : 1e-5;
  const double stats_rel = dtype == DType::kF64 ? 1e-10 : 1e-6;
  std::vector<double> x0 = Draw(tag + ".x", NumElements(shape), 0.3);
  ScaleSlices(shape, x0, -1);
  Param host("p", HostTensor(shape, x0, dtype));
  Param gpu("p", host.value.To(Gpu()));
  Adafactor cpu_opt(o), gpu_opt(o);
  cpu_opt.AddParams({&host});
  gpu_opt.AddParams({&gpu});
  for (const auto& [name, t] : StateParts(gpu_opt.state("p"))) {
    EXPECT_EQ(t->device(), Gpu()) << name;
    EXPECT_EQ(t->dtype(), dtype) << name;
  }
  EXPECT_EQ(gpu_opt.StateBytes(), cpu_opt.StateBytes());

  CaseResult result;
  Diff worst;
  for (int t = 1; t <= steps; ++t) {
    SCOPED_TRACE("step " + std::to_string(t));
    const Tensor g = HostTensor(shape, GradAt(tag, shape, t), dtype);
    host.grad.CopyFrom(g);
    gpu.grad.CopyFrom(g);
    cpu_opt.Step(t, RateAt(t));
    gpu_opt.Step(t, RateAt(t));

    const auto& cpu_stats = cpu_opt.last_stats("p");
    const auto& gpu_stats = gpu_opt.last_stats("p");
    EXPECT_EQ(cpu_stats.size(), static_cast<size_t>(SlicesOf(shape)));
    ExpectStatsNear(gpu_stats, cpu_stats, stats_rel, "stats");
    result.stats.push_back(gpu_stats);
    bool clipped = false;
    for (const auto& s : cpu_stats) clipped |= o.clip_threshold > 0 && s.update_rms / o.clip_threshold > 1;
    result.clipped_steps += clipped;

    auto add = [&](const Diff& d) {
      worst.max_rel = std::max(worst.max_rel, d.max_rel);
      worst.equal += d.equal;
      worst.total += d.total;
    };
    add(Compare(gpu.value.ToDoubles(), host.value.ToDoubles(), rel, "x"));
    const auto cpu_parts = StateParts(cpu_opt.state("p"));
    const auto gpu_parts = StateParts(gpu_opt.state("p"));
    EXPECT_EQ(gpu_parts.size(), cpu_parts.size());
    for (size_t i = 0; i < std::min(cpu_parts.size(), gpu_parts.size()); ++i)
      add(Compare(gpu_parts[i].second->ToDoubles(), cpu_parts[i].second->ToDoubles(), rel, cpu_parts[i].first));
  }
  // The parameter moved.
  EXPECT_NE(gpu.value.ToDoubles(), x0);
  std::printf("%-28s %-14s %s: max relative diff %.3g, %lld of %lld values bitwise equal, clipped at %d of %d steps\n",
              tag.c_str(), ShapeString(shape).c_str(), DTypeName(dtype), worst.max_rel,
              static_cast<long long>(worst.equal), static_cast<long long>(worst.total), result.clipped_steps, steps);
  return result;
}

AdafactorOptions Unfactored() {
  AdafactorOptions o;
  o.min_dim_to_factor = 1 << 20;
  return o;
}

TEST(GpuAdafactor, FactoredMatchesCpu) {
  BATON_REQUIRE_GPU();
  const AdafactorOptions o;
  CompareWithCpu("factored", {77, 50}, o);
  CompareWithCpu("factored.wide", {5, 700}, o);     // several column tiles and warp items per row
  CompareWithCpu("factored.tall", {700, 5}, o);     // several row tiles, mostly idle lanes
  CompareWithCpu("factored.large", {1031, 517}, o, 3);  // many blocks in every pass
  CompareWithCpu("factored.2x3", {2, 3}, o);        // the REFERENCE.md shape
}

TEST(GpuAdafactor, UnfactoredAndVectorsMatchCpu) {
  BATON_REQUIRE_GPU();
  CompareWithCpu("unfactored", {77, 50}, Unfactored());
  CompareWithCpu("vector", {777}, AdafactorOptions{});
  CompareWithCpu("vector.large", {100003}, AdafactorOptions{}, 3);
  CompareWithCpu("vector.one", {1}, AdafactorOptions{});
}

TEST(GpuAdafactor, StackedMatchesCpu) {
  BATON_REQUIRE_GPU();
  CompareWithCpu("stacked", {3, 40, 24}, AdafactorOptions{});
  CompareWithCpu("stacked.unfactored", {3, 40, 24}, Unfactored());
  AdafactorOptions b1;
  b1.beta1 = 0.9;
  b1.weight_decay = 0.01;
  CompareWithCpu("stacked.rank4.beta1", {2, 3, 17, 33}, b1);
}

TEST(GpuAdafactor, OptionsMatchCpu) {
  BATON_REQUIRE_GPU();
  for (bool factored : {true, false}) {
    AdafactorOptions base = factored ? AdafactorOptions{} : Unfactored();
    const std::string f = factored ? ".factored" : ".unfactored";
    AdafactorOptions b1 = base, wd = base, noscale = base, clip_on = base, clip_off = base, clip_none = base,
                     all = base;
    b1.beta1 = 0.9;
    wd.weight_decay = 0.1;
    noscale.scale_parameter = false;
    clip_on.clip_threshold = 0.5;    // RMS(U) is about 1 at t = 1: clipping active
    clip_off.clip_threshold = 100;   // never reached: clipping inactive
    clip_none.clip_threshold = 0;    // no clipping at all
    all.beta1 = 0.8;
    all.weight_decay = 0.05;
    all.scale_parameter = false;
    all.clip_threshold = 0.5;
    all.decay_exponent = 0.6;
    all.eps2 = 0.5;
    CompareWithCpu("beta1" + f, {77, 50}, b1);
    CompareWithCpu("weight_decay" + f, {77, 50}, wd);
    CompareWithCpu("no_scale" + f, {77, 50}, noscale);
    const CaseResult on = CompareWithCpu("clip_active" + f, {77, 50}, clip_on);
    EXPECT_GT(on.clipped_steps, 0) << "the clipping case never clipped";
    const CaseResult off = CompareWithCpu("clip_inactive" + f, {77, 50}, clip_off);
    EXPECT_EQ(off.clipped_steps, 0);
    CompareWithCpu("no_clip" + f, {77, 50}, clip_none);
    CompareWithCpu("all" + f, {77, 50}, all);
    CompareWithCpu("all.stacked" + f, {3, 40, 24}, all);
    CompareWithCpu("all.vector" + f, {513}, all);
  }
}

TEST(GpuAdafactor, Float64MatchesCpu) {
  BATON_REQUIRE_GPU();
  AdafactorOptions o;
  o.beta1 = 0.9;
  o.weight_decay = 0.1;
  CompareWithCpu("f64.factored", {77, 50}, o, 5, DType::kF64);
  AdafactorOptions u = Unfactored();
  u.beta1 = 0.9;
  CompareWithCpu("f64.unfactored", {77, 50}, u, 5, DType::kF64);
}

// REFERENCE.md's vectors, on the GPU directly.
TEST(GpuAdafactor, PaperVectors) {
  BATON_REQUIRE_GPU();
  Param p("w", Tensor::FromVector<float>({2, 3}, {0.1f, -0.2f, 0.3f, -0.4f, 0.5f, -0.6f}).To(Gpu()));
  Adafactor opt(AdafactorOptions{});
  opt.AddParams({&p});
  p.grad.CopyFrom(Tensor::FromVector<float>({2, 3}, {0.3f, -0.1f, 0.2f, 0.05f, 0.4f, -0.2f}));
  opt.Step(1, 1e-2);
  ASSERT_EQ(opt.last_stats("w").size(), 1u);
  EXPECT_NEAR(opt.last_stats("w")[0].alpha, 0.00389444, 1e-6 * 0.00389444);
  EXPECT_NEAR(opt.last_stats("w")[0].update_rms, 1.019043, 1e-6 * 1.019043);
  const std::vector<double> x1 = {0.0941038, -0.1985502, 0.2957733, -0.4008171, 0.4951782, -0.5964856};
  const auto got = p.value.ToDoubles();
  for (size_t i = 0; i < x1.size(); ++i) EXPECT_NEAR(got[i], x1[i], 1e-6) << i;
}

// Same inputs, two GPU optimizers: the same bits in parameters, state and statistics.
TEST(GpuAdafactor, Deterministic) {
  BATON_REQUIRE_GPU();
  struct Case {
    std::string tag;
    Shape shape;
    AdafactorOptions options;
  };
  AdafactorOptions b1;
  b1.beta1 = 0.9;
  const std::vector<Case> cases = {
      {"det.factored", {1031, 2063}, AdafactorOptions{}},
      {"det.stacked", {4, 257, 771}, b1},
      {"det.vector", {1000003}, b1},
      {"det.unfactored", {300, 1001}, Unfactored()},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.tag);
    const Tensor x0 = HostTensor(c.shape, Draw(c.tag + ".x", NumElements(c.shape), 0.3), DType::kF32);
    Param a("p", x0.To(Gpu())), b("p", x0.To(Gpu()));
    Adafactor oa(c.options), ob(c.options);
    oa.AddParams({&a});
    ob.AddParams({&b});
    for (int t = 1; t <= 5; ++t) {
      const Tensor g = HostTensor(c.shape, GradAt(c.tag, c.shape, t), DType::kF32);
      a.grad.CopyFrom(g);
      b.grad.CopyFrom(g);
      oa.Step(t, RateAt(t));
      ob.Step(t, RateAt(t));
      const auto sa = oa.last_stats("p"), sb = ob.last_stats("p");
      ASSERT_EQ(sa.size(), sb.size());
      for (size_t i = 0; i < sa.size(); ++i) {
        EXPECT_EQ(sa[i].alpha, sb[i].alpha);
        EXPECT_EQ(sa[i].update_rms, sb[i].update_rms);
        EXPECT_EQ(sa[i].param_rms, sb[i].param_rms);
      }
    }
    EXPECT_TRUE(a.value.ToDoubles() == b.value.ToDoubles()) << "parameters differ";
    const auto pa = StateParts(oa.state("p")), pb = StateParts(ob.state("p"));
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i)
      EXPECT_TRUE(pa[i].second->ToDoubles() == pb[i].second->ToDoubles()) << pa[i].first << " differs";
  }
}

// The free function: no statistics returned for a GPU parameter (no wait), but
// written to the device tensor when one is given.
TEST(GpuAdafactor, UpdateFunctionKeepsStatisticsOnDevice) {
  BATON_REQUIRE_GPU();
  const Shape shape{3, 40, 24};
  const AdafactorOptions o;
  std::vector<double> x0 = Draw("free.x", NumElements(shape), 0.3);
  ScaleSlices(shape, x0, -1);
  Param host("p", HostTensor(shape, x0, DType::kF32));
  Param gpu("p", host.value.To(Gpu()));
  AdafactorState hs = NewAdafactorState(o, shape, DType::kF32);
  AdafactorState gs = NewAdafactorState(o, shape, DType::kF32, Gpu());
  EXPECT_EQ(gs.row.device(), Gpu());
  const Tensor g = HostTensor(shape, GradAt("free", shape, 1), DType::kF32);
  host.grad.CopyFrom(g);
  gpu.grad.CopyFrom(g);
  const auto want = AdafactorUpdate(o, host, hs, 1, 1e-2);
  EXPECT_TRUE(AdafactorUpdate(o, gpu, gs, 1, 1e-2).empty());  // no device tensor: nothing fetched

  host.grad.CopyFrom(HostTensor(shape, GradAt("free", shape, 2), DType::kF32));
  gpu.grad.CopyFrom(host.grad);
  const auto want2 = AdafactorUpdate(o, host, hs, 2, 1e-2);
  Tensor device_stats;
  EXPECT_TRUE(AdafactorUpdate(o, gpu, gs, 2, 1e-2, &device_stats).empty());
  ASSERT_TRUE(device_stats.defined());
  EXPECT_EQ(device_stats.device(), Gpu());
  EXPECT_EQ(device_stats.shape(), (Shape{3, 3}));
  ExpectStatsNear(AdafactorStatsFromDevice(device_stats), want2, 1e-6, "device stats");
  Compare(gpu.value.ToDoubles(), host.value.ToDoubles(), 1e-5, "x");
  (void)want;
}

TEST(GpuAdafactor, ZeroGradientLeavesParameter) {
  BATON_REQUIRE_GPU();
  for (const AdafactorOptions& o : {AdafactorOptions{}, Unfactored()}) {
    Param p("w", HostTensor({30, 40}, Draw("zero.x", 1200, 1.0), DType::kF32).To(Gpu()));
    const auto before = p.value.ToDoubles();
    Adafactor opt(o);
    opt.AddParams({&p});
    opt.Step(1, 1e-2);  // G = 0: U = 0 / sqrt(eps1-based Vhat) = 0
    EXPECT_EQ(p.value.ToDoubles(), before);
  }
}

// Gradient-norm clipping with GPU gradients (ops::SumsOfSquares / ops::Scale)
// against host gradients.
TEST(GpuGradClip, MatchesCpu) {
  BATON_REQUIRE_GPU();
  const std::vector<Shape> shapes = {{77, 50}, {777}, {3, 40, 24}, {1}};
  std::vector<std::unique_ptr<Param>> host, gpu;
  std::vector<Param*> hp, gp;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const std::string name = "g" + std::to_string(i);
    const Tensor g = HostTensor(shapes[i], Draw("clip." + name, NumElements(shapes[i]), 0.1 * (i + 1)), DType::kF32);
    host.push_back(std::make_unique<Param>(name, Tensor::Zeros(shapes[i], DType::kF32)));
    gpu.push_back(std::make_unique<Param>(name, Tensor::Zeros(shapes[i], DType::kF32, Gpu())));
    host.back()->grad.CopyFrom(g);
    gpu.back()->grad.CopyFrom(g);
    hp.push_back(host.back().get());
    gp.push_back(gpu.back().get());
  }
  const auto want = SquaredGradNorms(hp), got = SquaredGradNorms(gp);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5 * want[i]) << i;
  const double norm = std::sqrt(SquaredGradNorm(hp));
  EXPECT_NEAR(ClipGradNorm(gp, 0.5 * norm), norm, 1e-5 * norm);
  ClipGradNorm(hp, 0.5 * norm);
  for (size_t i = 0; i < shapes.size(); ++i)
    Compare(gp[i]->grad.ToDoubles(), hp[i]->grad.ToDoubles(), 1e-6, "scaled grad " + hp[i]->name);
  EXPECT_NEAR(std::sqrt(SquaredGradNorm(gp)), 0.5 * norm, 1e-5 * norm);
}

}  // namespace
}  // namespace baton
