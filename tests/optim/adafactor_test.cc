// AdaFactor against the REFERENCE.md vectors (computed independently in
// float64) and against a straightforward float64 reference written here from
// the paper's formulas. No expected value comes from the code under test.
#include "optim/adafactor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "runtime/rng.h"

namespace baton {
namespace {

constexpr uint64_t kSeed = 20240611;

// Fresh non-zero N(0, scale^2) draws for a named stream.
std::vector<double> Draw(const std::string& stream, int64_t count, double scale = 1.0) {
  std::vector<double> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    double z = NormalAt(kSeed, StreamId(stream), static_cast<uint64_t>(i));
    if (std::abs(z) < 1e-3) z = 0.5;
    v[i] = scale * z;
  }
  return v;
}

template <typename T>
std::vector<T> Cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// Rounds through T, so the float64 reference starts from exactly what the parameter holds.
template <typename T>
std::vector<double> Round(const std::vector<double>& v) {
  std::vector<double> out;
  for (double x : v) out.push_back(static_cast<T>(x));
  return out;
}

template <typename T>
std::unique_ptr<Param> MakeParam(const std::string& name, const Shape& shape, const std::vector<double>& x) {
  return std::make_unique<Param>(name, Tensor::FromVector<T>(shape, Cast<T>(x)));
}

template <typename T>
void SetGrad(Param& p, const std::vector<double>& g) {
  p.grad.CopyFrom(Tensor::FromVector<T>(p.value.shape(), Cast<T>(g)));
}

template <typename T>
double Tol() { return sizeof(T) == 4 ? 2e-6 : 1e-12; }

void ExpectRel(const std::vector<double>& got, const std::vector<double>& want, double rel, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], rel * std::max(1.0, std::abs(want[i]))) << what << " element " << i;
}

// ---- float64 reference, one [n, m] slice, written from the formulas -------

struct Ref {
  std::vector<double> R, C, V, M;
  double alpha = 0, rms_u = 0;
};

double Rms(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s / v.size());
}

void RefStep(const AdafactorOptions& o, bool factored, int n, int m, std::vector<double>& X,
             const std::vector<double>& G, Ref& st, int t, double rate) {
  const double b2 = 1 - std::pow(t, -o.decay_exponent);
  st.alpha = o.scale_parameter ? std::max(o.eps2, Rms(X)) * rate : rate;
  std::vector<double> U(n * m);
  if (factored) {
    st.R.resize(n, 0.0);
    st.C.resize(m, 0.0);
    for (int i = 0; i < n; ++i) {
      double s = 0;
      for (int j = 0; j < m; ++j) s += G[i * m + j] * G[i * m + j] + o.eps1;
      st.R[i] = b2 * st.R[i] + (1 - b2) * s;
    }
    for (int j = 0; j < m; ++j) {
      double s = 0;
      for (int i = 0; i < n; ++i) s += G[i * m + j] * G[i * m + j] + o.eps1;
      st.C[j] = b2 * st.C[j] + (1 - b2) * s;
    }
    double sr = 0;
    for (double r : st.R) sr += r;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < m; ++j) U[i * m + j] = G[i * m + j] / std::sqrt(st.R[i] * st.C[j] / sr);
  } else {
    st.V.resize(n * m, 0.0);
    for (int k = 0; k < n * m; ++k) {
      st.V[k] = b2 * st.V[k] + (1 - b2) * (G[k] * G[k] + o.eps1);
      U[k] = G[k] / std::sqrt(st.V[k]);
    }
  }
  st.rms_u = Rms(U);
  const double clip = o.clip_threshold > 0 ? std::max(1.0, st.rms_u / o.clip_threshold) : 1.0;
  st.M.resize(n * m, 0.0);
  for (int k = 0; k < n * m; ++k) {
    double step = U[k] / clip;
    if (o.beta1 > 0) step = st.M[k] = o.beta1 * st.M[k] + (1 - o.beta1) * step;
    X[k] = X[k] - st.alpha * step - o.weight_decay * rate * X[k];
  }
}

double PaperRate(int t) { return std::min(1e-2, 1 / std::sqrt(static_cast<double>(t))); }

template <typename T>
class AdafactorTyped : public ::testing::Test {};
using ParamTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(AdafactorTyped, ParamTypes);

// REFERENCE.md: factored 2x3 path, paper defaults, t = 1 and t = 2.
TYPED_TEST(AdafactorTyped, PaperVectorsFactored) {
  using T = TypeParam;
  auto p = MakeParam<T>("w", {2, 3}, {0.1, -0.2, 0.3, -0.4, 0.5, -0.6});
  Adafactor opt(AdafactorOptions{});
  opt.AddParams({p.get()});
  ASSERT_TRUE(opt.state("w").factored);

  SetGrad<T>(*p, {0.3, -0.1, 0.2, 0.05, 0.4, -0.2});
  opt.Step(1, 1e-2);
  ASSERT_EQ(opt.last_stats("w").size(), 1u);
  EXPECT_NEAR(opt.last_stats("w")[0].alpha, 0.00389444, 1e-6 * 0.00389444);
  EXPECT_NEAR(opt.last_stats("w")[0].update_rms, 1.019043, 1e-6 * 1.019043);
  ExpectRel(p->value.ToDoubles(), {0.0941038, -0.1985502, 0.2957733, -0.4008171, 0.4951782, -0.5964856}, 1e-6,
            "X1");

  SetGrad<T>(*p, {-0.2, 0.1, 0.1, 0.3, -0.3, 0.05});
  opt.Step(2, 1e-2);
  EXPECT_NEAR(opt.last_stats("w")[0].alpha, 0.003867407, 1e-6 * 0.003867407);
  EXPECT_NEAR(opt.last_stats("w")[0].update_rms, 0.849986, 1e-6 * 0.849986);
  ExpectRel(p->value.ToDoubles(), {0.0980915, -0.2004191, 0.2924574, -0.4050143, 0.4991124, -0.5976489}, 1e-6,
            "X2");
}

// REFERENCE.md: vector x = [0.5, -1, 2], g = [0.1, -0.2, 0], t = 1.
TYPED_TEST(AdafactorTyped, PaperVectorCase) {
  using T = TypeParam;
  auto p = MakeParam<T>("b", {3}, {0.5, -1, 2});
  Adafactor opt(AdafactorOptions{});
  opt.AddParams({p.get()});
  ASSERT_FALSE(opt.state("b").factored);
  SetGrad<T>(*p, {0.1, -0.2, 0});
  opt.Step(1, 1e-2);
  ExpectRel(p->value.ToDoubles(), {0.4867712, -0.9867712, 2.0}, 1e-6, "x1");
}

// G_ij = a_i b_j makes G^2 rank one, so R C^T / sum(R) is exactly G^2 (+eps1)
// and the factored update equals the unfactored one.
TYPED_TEST(AdafactorTyped, RankOneGradientFactoredEqualsUnfactored) {
  using T = TypeParam;
  const int n = 5, m = 7;
  auto a = Draw("rank1.a", n), b = Draw("rank1.b", m);
  std::vector<double> g(n * m);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) g[i * m + j] = a[i] * b[j];
  const auto x = Draw("rank1.x", n * m, 0.1);
  auto pf = MakeParam<T>("f", {n, m}, x);
  auto pu = MakeParam<T>("u", {n, m}, x);
  SetGrad<T>(*pf, g);
  SetGrad<T>(*pu, g);
  AdafactorOptions unf;
  unf.min_dim_to_factor = 100;
  Adafactor of(AdafactorOptions{}), ou(unf);
  of.AddParams({pf.get()});
  ou.AddParams({pu.get()});
  ASSERT_TRUE(of.state("f").factored);
  ASSERT_FALSE(ou.state("u").factored);
  of.Step(1, 1e-2);
  ou.Step(1, 1e-2);
  ExpectRel(pf->value.ToDoubles(), pu->value.ToDoubles(), Tol<T>(), "factored vs unfactored");
  // And the step actually moved the parameter.
  EXPECT_NE(pf->value.ToDoubles()[0], static_cast<T>(x[0]));
}

// Runs `steps` steps of a [n, m] parameter with fresh random gradients and
// compares with the float64 reference after each step.
template <typename T>
void CompareWithReference(const AdafactorOptions& o, int n, int m, int steps, const std::string& tag) {
  const std::vector<double> x0 = Round<T>(Draw(tag + ".x", n * m, 0.3));
  auto p = MakeParam<T>("p", {n, m}, x0);
  Adafactor opt(o);
  opt.AddParams({p.get()});
  const bool factored = opt.state("p").factored;
  std::vector<double> X = x0;
  Ref ref;
  for (int t = 1; t <= steps; ++t) {
    const std::vector<double> g = Round<T>(Draw(tag + ".g" + std::to_string(t), n * m, 0.05 * t));
    SetGrad<T>(*p, g);
    const double rate = PaperRate(t) * 3;  // a rate other than the default
    opt.Step(t, rate);
    RefStep(o, factored, n, m, X, g, ref, t, rate);
    SCOPED_TRACE(tag + " step " + std::to_string(t));
    EXPECT_NEAR(opt.last_stats("p")[0].alpha, ref.alpha, Tol<T>() * ref.alpha);
    EXPECT_NEAR(opt.last_stats("p")[0].update_rms, ref.rms_u, Tol<T>() * ref.rms_u);
    ExpectRel(p->value.ToDoubles(), X, Tol<T>(), tag.c_str());
  }
}

TYPED_TEST(AdafactorTyped, UnfactoredMatchesReference) {
  AdafactorOptions o;
  o.min_dim_to_factor = 8;  // [6, 9]: smaller dim 6 < 8 keeps a full V
  CompareWithReference<TypeParam>(o, 6, 9, 4, "unfactored");
}

TYPED_TEST(AdafactorTyped, FactoredMatchesReference) {
  AdafactorOptions o;
  o.min_dim_to_factor = 6;  // [6, 9] is factored at the threshold
  CompareWithReference<TypeParam>(o, 6, 9, 4, "factored");
}

TYPED_TEST(AdafactorTyped, OptionsMatchReference) {
  for (int min_dim : {0, 100}) {
    AdafactorOptions o;
    o.min_dim_to_factor = min_dim;
    AdafactorOptions b1 = o, wd = o, noscale = o, noclip = o, all = o;
    b1.beta1 = 0.9;
    wd.weight_decay = 0.1;
    noscale.scale_parameter = false;
    noclip.clip_threshold = 0;
    all.beta1 = 0.8;
    all.weight_decay = 0.05;
    all.scale_parameter = false;
    all.clip_threshold = 0.5;
    all.decay_exponent = 0.6;
    all.eps2 = 0.5;
    const std::string f = min_dim ? ".unfactored" : ".factored";
    CompareWithReference<TypeParam>(b1, 4, 5, 3, "beta1" + f);
    CompareWithReference<TypeParam>(wd, 4, 5, 3, "weight_decay" + f);
    CompareWithReference<TypeParam>(noscale, 4, 5, 3, "no_scale" + f);
    CompareWithReference<TypeParam>(noclip, 4, 5, 3, "no_clip" + f);
    CompareWithReference<TypeParam>(all, 4, 5, 3, "all" + f);
  }
}

// A stacked [L, n, m] tensor updates exactly like L separate [n, m] tensors.
TYPED_TEST(AdafactorTyped, StackedEqualsSeparate) {
  using T = TypeParam;
  const int L = 3, n = 4, m = 6;
  for (int min_dim : {0, 100}) {
    AdafactorOptions o;
    o.min_dim_to_factor = min_dim;
    o.beta1 = min_dim ? 0.5 : 0.0;
    // Slices of very different scale (x and g), so a shared RMS or R/C would show.
    auto x = Draw("stack.x", L * n * m, 0.2);
    for (int l = 0; l < L; ++l)
      for (int k = 0; k < n * m; ++k) x[l * n * m + k] *= std::pow(10.0, 1 - l);
    auto stacked = MakeParam<T>("stacked", {L, n, m}, x);
    std::vector<std::unique_ptr<Param>> parts;
    std::vector<Param*> part_ptrs;
    for (int l = 0; l < L; ++l) {
      std::vector<double> xl(x.begin() + l * n * m, x.begin() + (l + 1) * n * m);
      parts.push_back(MakeParam<T>("part" + std::to_string(l), {n, m}, xl));
      part_ptrs.push_back(parts.back().get());
    }
    Adafactor os(o), op(o);
    os.AddParams({stacked.get()});
    op.AddParams(part_ptrs);
    EXPECT_EQ(os.state("stacked").factored, min_dim == 0);
    if (min_dim == 0) {
      EXPECT_EQ(os.state("stacked").row.shape(), (Shape{L, n}));
      EXPECT_EQ(os.state("stacked").col.shape(), (Shape{L, m}));
    }
    EXPECT_EQ(os.StateBytes(), op.StateBytes());
    for (int t = 1; t <= 4; ++t) {
      auto g = Draw("stack.g" + std::to_string(t), L * n * m);
      for (int l = 0; l < L; ++l)
        for (int k = 0; k < n * m; ++k) g[l * n * m + k] *= std::pow(10.0, l - 1);
      SetGrad<T>(*stacked, g);
      for (int l = 0; l < L; ++l)
        SetGrad<T>(*parts[l], std::vector<double>(g.begin() + l * n * m, g.begin() + (l + 1) * n * m));
      os.Step(t, PaperRate(t));
      op.Step(t, PaperRate(t));
    }
    const auto got = stacked->value.ToDoubles();
    ASSERT_EQ(os.last_stats("stacked").size(), static_cast<size_t>(L));
    for (int l = 0; l < L; ++l) {
      const auto want = parts[l]->value.ToDoubles();
      for (int k = 0; k < n * m; ++k) EXPECT_EQ(got[l * n * m + k], want[k]) << "slice " << l << " element " << k;
      EXPECT_EQ(os.last_stats("stacked")[l].update_rms, op.last_stats("part" + std::to_string(l))[0].update_rms);
    }
  }
}

// Copying the state into a fresh optimizer (what a checkpoint does) and
// continuing gives the same numbers as an uninterrupted run.
TEST(Adafactor, StateCopyResumesExactly) {
  AdafactorOptions o;
  o.beta1 = 0.9;
  const Shape shape{5, 8};
  const auto x = Draw("resume.x", 40);
  auto a = MakeParam<float>("w", shape, x), b = MakeParam<float>("w", shape, x);
  Adafactor oa(o), ob(o);
  oa.AddParams({a.get()});
  ob.AddParams({b.get()});
  for (int t = 1; t <= 5; ++t) {
    const auto g = Draw("resume.g" + std::to_string(t), 40);
    SetGrad<float>(*a, g);
    SetGrad<float>(*b, g);
    oa.Step(t, PaperRate(t));
    if (t == 3) {  // "resume" b: new optimizer, state and weights copied over
      Adafactor fresh(o);
      fresh.AddParams({b.get()});
      ob.Step(t, PaperRate(t));
      AdafactorState& s = fresh.mutable_state("w");
      s.row.CopyFrom(ob.state("w").row);
      s.col.CopyFrom(ob.state("w").col);
      s.momentum.CopyFrom(ob.state("w").momentum);
      std::swap(ob, fresh);
    } else {
      ob.Step(t, PaperRate(t));
    }
  }
  EXPECT_EQ(a->value.ToDoubles(), b->value.ToDoubles());
}

TEST(Adafactor, ZeroGradientLeavesParameter) {
  auto p = MakeParam<float>("w", {3, 4}, Draw("zero.x", 12));
  const auto before = p->value.ToDoubles();
  Adafactor opt(AdafactorOptions{});
  opt.AddParams({p.get()});
  opt.Step(1, 1e-2);  // G = 0: U = 0 / sqrt(eps1-based Vhat) = 0
  EXPECT_EQ(p->value.ToDoubles(), before);
}

TEST(Adafactor, StateBytesAgainstAdam) {
  struct Case {
    Shape shape;
    int min_dim;
    double beta1;
    int64_t floats;  // expected state floats
  };
  const std::vector<Case> cases = {
      {{768, 3072}, 0, 0.0, 768 + 3072},        // factored: n + m
      {{768}, 0, 0.0, 768},                     // vector: full
      {{64, 256}, 128, 0.0, 64 * 256},          // smaller dim 64 < 128: unfactored n * m
      {{256, 128}, 128, 0.0, 256 + 128},        // at the threshold: factored
      {{12, 768, 768}, 128, 0.0, 12 * (768 + 768)},  // stacked: per-layer n + m
      {{768, 3072}, 0, 0.9, 768 + 3072 + 768 * 3072},  // beta1 adds a full momentum
  };
  for (const Case& c : cases) {
    Param p("p", Tensor::Zeros(c.shape, DType::kF32));
    AdafactorOptions o;
    o.min_dim_to_factor = c.min_dim;
    o.beta1 = c.beta1;
    Adafactor opt(o);
    opt.AddParams({&p});
    const int64_t adam = AdamStateBytes({&p});
    EXPECT_EQ(opt.StateBytes(), c.floats * 4) << ShapeString(c.shape);
    EXPECT_EQ(adam, 2 * 4 * NumElements(c.shape));
    std::printf("state %-16s min_dim=%-3d beta1=%.1f  adafactor %10lld B  adam %10lld B  (%.4f of adam)\n",
                ShapeString(c.shape).c_str(), c.min_dim, c.beta1, static_cast<long long>(opt.StateBytes()),
                static_cast<long long>(adam), static_cast<double>(opt.StateBytes()) / adam);
  }
}

TEST(Adafactor, ValidateOptions) {
  EXPECT_TRUE(ValidateAdafactorOptions(AdafactorOptions{}).ok());
  auto bad = [](auto mutate, const char* field) {
    AdafactorOptions o;
    mutate(o);
    const Status st = ValidateAdafactorOptions(o);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << field;
    EXPECT_NE(st.message().find(field), std::string::npos) << st.message();
  };
  bad([](AdafactorOptions& o) { o.eps1 = 0; }, "eps1");
  bad([](AdafactorOptions& o) { o.beta1 = 1.0; }, "beta1");
  bad([](AdafactorOptions& o) { o.clip_threshold = -1; }, "clip_threshold");
  bad([](AdafactorOptions& o) { o.decay_exponent = 0; }, "decay_exponent");
  bad([](AdafactorOptions& o) { o.weight_decay = -0.1; }, "weight_decay");
  bad([](AdafactorOptions& o) { o.min_dim_to_factor = -1; }, "min_dim_to_factor");
}

}  // namespace
}  // namespace baton
