#include "optim/adafactor.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#if BATON_CUDA
#include "optim/cuda/adafactor_update.h"
#endif

namespace baton {
namespace {

// How a parameter splits into independently updated slices of n x m values.
struct Layout {
  int64_t slices = 1;  // product of the leading (batch) axes
  int64_t n = 1, m = 0;
  bool factored = false;
};

Layout LayoutOf(const AdafactorOptions& o, const Shape& shape) {
  Layout l;
  if (shape.size() < 2) {  // scalar or vector: one slice, full V
    l.m = NumElements(shape);
    return l;
  }
  l.n = shape[shape.size() - 2];
  l.m = shape.back();
  for (size_t i = 0; i + 2 < shape.size(); ++i) l.slices *= shape[i];
  l.factored = std::min(l.n, l.m) >= o.min_dim_to_factor;
  return l;
}

std::string Str(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

bool SameLayout(const Tensor& t, const Shape& shape, DType dtype, Device device) {
  return t.defined() && t.shape() == shape && t.dtype() == dtype && t.device() == device;
}

// The shapes of a parameter's state tensors and which of them exist.
struct StateShapes {
  bool factored = false;
  bool has_row = false, has_full = false, has_momentum = false;
  Shape row, col, full;
};

StateShapes ShapesOf(const AdafactorOptions& o, const Shape& shape) {
  const Layout l = LayoutOf(o, shape);
  StateShapes s;
  s.factored = s.has_row = l.factored;
  s.has_full = !l.factored;
  s.has_momentum = o.beta1 > 0;
  if (l.factored) {
    s.row.assign(shape.begin(), shape.end() - 2);  // the batch (layer) axes
    s.col = s.row;
    s.row.push_back(l.n);
    s.col.push_back(l.m);
  }
  s.full = shape;
  return s;
}

// Checks that `s` (possibly set by a checkpoint loader) fits the parameter.
void CheckState(const AdafactorOptions& o, const Param& p, const AdafactorState& s) {
  const StateShapes want = ShapesOf(o, p.value.shape());
  const DType dt = p.value.dtype();
  const Device dev = p.value.device();
  BATON_CHECK(s.factored == want.factored, "adafactor state of " << p.name << " has factored=" << s.factored);
  auto check = [&](const Tensor& have, bool needed, const Shape& shape, const char* what) {
    if (!needed) return;
    BATON_CHECK(SameLayout(have, shape, dt, dev), "adafactor " << what << " of " << p.name << " is "
                                                               << (have.defined() ? have.Describe() : "undefined")
                                                               << ", expected " << DTypeName(dt) << ShapeString(shape)
                                                               << " on " << dev.ToString());
  };
  check(s.row, want.has_row, want.row, "row");
  check(s.col, want.has_row, want.col, "col");
  check(s.full, want.has_full, want.full, "full");
  check(s.momentum, want.has_momentum, want.full, "momentum");
}

// Updates slice by slice.
template <typename T>
std::vector<AdafactorSliceStats> UpdateTyped(const AdafactorOptions& o, const Layout& l, Param& p,
                                             AdafactorState& s, double beta2, double rate) {
  const int64_t n = l.n, m = l.m, nm = n * m;
  T* x_all = p.value.data<T>();
  const T* g_all = p.grad.data<T>();
  T* mom_all = o.beta1 > 0 ? s.momentum.data<T>() : nullptr;
  std::vector<double> colsum(static_cast<size_t>(l.factored ? m : 0));
  std::vector<AdafactorSliceStats> stats;
  for (int64_t b = 0; b < l.slices; ++b) {
    T* x = x_all + b * nm;
    const T* g = g_all + b * nm;
    AdafactorSliceStats st;
    if (nm == 0) {
      stats.push_back(st);
      continue;
    }

    double sx = 0;
    for (int64_t k = 0; k < nm; ++k) sx += static_cast<double>(x[k]) * x[k];
    st.param_rms = std::sqrt(sx / nm);
    st.alpha = o.scale_parameter ? std::max(o.eps2, st.param_rms) * rate : rate;

    // Second-moment estimate. Vhat is formed from the stored (rounded) R, C, V
    // so a resumed run computes the same numbers.
    const T* row = nullptr;
    const T* col = nullptr;
    const T* v = nullptr;
    double rsum = 0;
    if (l.factored) {
      T* r = s.row.data<T>() + b * n;
      T* c = s.col.data<T>() + b * m;
      std::fill(colsum.begin(), colsum.end(), 0.0);
      for (int64_t i = 0; i < n; ++i) {
        double rs = 0;
        for (int64_t j = 0; j < m; ++j) {
          const double g2 = static_cast<double>(g[i * m + j]) * g[i * m + j] + o.eps1;
          rs += g2;
          colsum[j] += g2;
        }
        r[i] = static_cast<T>(beta2 * r[i] + (1 - beta2) * rs);
      }
      for (int64_t j = 0; j < m; ++j) c[j] = static_cast<T>(beta2 * c[j] + (1 - beta2) * colsum[j]);
      for (int64_t i = 0; i < n; ++i) rsum += r[i];
      row = r;
      col = c;
    } else {
      T* vv = s.full.data<T>() + b * nm;
      for (int64_t k = 0; k < nm; ++k) {
        const double g2 = static_cast<double>(g[k]) * g[k] + o.eps1;
        vv[k] = static_cast<T>(beta2 * vv[k] + (1 - beta2) * g2);
      }
      v = vv;
    }
    // U = G / sqrt(Vhat), computed twice (for RMS(U), then for the update) rather
    // than stored: a buffer of U would cost twice the largest parameter in memory.
    auto u_at = [&](int64_t k) {
      const double vhat = l.factored ? static_cast<double>(row[k / m]) * col[k % m] / rsum : static_cast<double>(v[k]);
      return g[k] / std::sqrt(vhat);
    };

    double su = 0;
    for (int64_t k = 0; k < nm; ++k) {
      const double u = u_at(k);
      su += u * u;
    }
    st.update_rms = std::sqrt(su / nm);
    const double denom = o.clip_threshold > 0 ? std::max(1.0, st.update_rms / o.clip_threshold) : 1.0;

    T* mom = mom_all ? mom_all + b * nm : nullptr;
    const double decay = o.weight_decay * rate;
    for (int64_t k = 0; k < nm; ++k) {
      double step = u_at(k) / denom;
      if (mom) {
        mom[k] = static_cast<T>(o.beta1 * mom[k] + (1 - o.beta1) * step);
        step = mom[k];  // the stored value, again for exact resumption
      }
      const double x0 = x[k];
      x[k] = static_cast<T>(x0 - st.alpha * step - decay * x0);
    }
    stats.push_back(st);
  }
  return stats;
}

#if BATON_CUDA
// Allocates `device_stats` (f64 [slices, 3] on the parameter's device) unless it already is.
void EnsureDeviceStats(const Layout& l, const Param& p, Tensor* device_stats) {
  const Shape shape{l.slices, 3};
  if (SameLayout(*device_stats, shape, DType::kF64, p.value.device())) return;
  MemoryScope scope(MemoryCategory::kOptimizer);
  *device_stats = Tensor::Empty(shape, DType::kF64, p.value.device());
}

cuda::AdafactorCudaTensor DeviceTensor(const Layout& l, Param& p, AdafactorState& s, Tensor* device_stats) {
  cuda::AdafactorCudaTensor a;
  a.dtype = p.value.dtype();
  a.x = p.value.raw();
  a.g = p.grad.raw();
  if (l.factored) {
    a.row = s.row.raw();
    a.col = s.col.raw();
  } else {
    a.full = s.full.raw();
  }
  a.momentum = s.momentum.defined() ? s.momentum.raw() : nullptr;
  a.slices = l.slices;
  a.n = l.n;
  a.m = l.m;
  a.factored = l.factored;
  a.stats = device_stats != nullptr ? static_cast<double*>(device_stats->raw()) : nullptr;
  return a;
}

cuda::AdafactorCudaStep DeviceStep(const AdafactorOptions& o, double beta2, double rate) {
  cuda::AdafactorCudaStep a;
  a.beta2 = beta2;
  a.rate = rate;
  a.eps1 = o.eps1;
  a.eps2 = o.eps2;
  a.clip_threshold = o.clip_threshold;
  a.beta1 = o.beta1;
  a.weight_decay = o.weight_decay;
  a.scale_parameter = o.scale_parameter;
  return a;
}
#endif

// The update of a parameter that lives on a GPU: the same arithmetic as
// UpdateTyped, enqueued on the compute stream (optim/cuda/adafactor_update.cu).
// Per-slice statistics, when `device_stats` is given, land in it as
// f64 [slices, 3] on the parameter's device: alpha, update_rms, param_rms.
void UpdateOnDevice(const AdafactorOptions& o, const Layout& l, Param& p, AdafactorState& s, double beta2,
                    double rate, Tensor* device_stats) {
#if BATON_CUDA
  if (device_stats != nullptr) EnsureDeviceStats(l, p, device_stats);
  cuda::AdafactorUpdateCuda(DeviceTensor(l, p, s, device_stats), DeviceStep(o, beta2, rate));
#else
  (void)o, (void)l, (void)s, (void)beta2, (void)rate, (void)device_stats;
  BATON_CHECK(false, "parameter " << p.name << " is on " << p.value.device().ToString()
                                  << " but this build has no CUDA backend (configure with -DBATON_CUDA=ON)");
#endif
}

// The checks every update makes before touching anything.
void CheckUpdate(const AdafactorOptions& o, const Param& p, const AdafactorState& s, int64_t step, double rate) {
  BATON_CHECK(step >= 1, "adafactor step is 1-based, got " << step);
  BATON_CHECK(std::isfinite(rate) && rate >= 0, "adafactor rate " << rate << " for " << p.name);
  BATON_CHECK(p.grad.defined() && p.grad.shape() == p.value.shape() && p.grad.dtype() == p.value.dtype() &&
                  p.grad.device() == p.value.device(),
              "gradient of " << p.name << " does not match " << p.value.Describe());
  CheckState(o, p, s);
}

double Beta2At(const AdafactorOptions& o, int64_t step) {
  return 1.0 - std::pow(static_cast<double>(step), -o.decay_exponent);
}

}  // namespace

std::vector<AdafactorSliceStats> AdafactorStatsFromDevice(const Tensor& device_stats) {
  if (!device_stats.defined()) return {};
  BATON_CHECK(device_stats.dtype() == DType::kF64 && device_stats.rank() == 2 && device_stats.dim(1) == 3,
              "adafactor device statistics are f64 [slices, 3], not " << device_stats.Describe());
  const std::vector<double> v = device_stats.ToDoubles();  // one copy, waits for the GPU
  std::vector<AdafactorSliceStats> stats(static_cast<size_t>(device_stats.dim(0)));
  for (size_t i = 0; i < stats.size(); ++i) stats[i] = {v[3 * i], v[3 * i + 1], v[3 * i + 2]};
  return stats;
}

Status ValidateAdafactorOptions(const AdafactorOptions& o) {
  auto bad = [](const std::string& field, double v, const char* want) {
    return Status::InvalidArgument("optim." + field + " = " + Str(v) + ": must be " + want);
  };
  // eps1 > 0 keeps sum(R) and V positive, so a zero gradient gives U = 0, not 0/0.
  if (!(o.eps1 > 0) || !std::isfinite(o.eps1)) return bad("eps1", o.eps1, "> 0");
  if (!(o.eps2 >= 0) || !std::isfinite(o.eps2)) return bad("eps2", o.eps2, ">= 0");
  if (!(o.clip_threshold >= 0) || !std::isfinite(o.clip_threshold))
    return bad("clip_threshold", o.clip_threshold, ">= 0 (0 = no update clipping)");
  // Positive so that beta2_1 = 0 and beta2_t rises towards 1.
  if (!(o.decay_exponent > 0) || !std::isfinite(o.decay_exponent))
    return bad("decay_exponent", o.decay_exponent, "> 0");
  if (!(o.beta1 >= 0 && o.beta1 < 1)) return bad("beta1", o.beta1, "in [0, 1) (0 = no first moment)");
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) return bad("weight_decay", o.weight_decay, ">= 0");
  if (o.min_dim_to_factor < 0) return bad("min_dim_to_factor", o.min_dim_to_factor, ">= 0");
  return Status::OK();
}

bool AdafactorFactored(const AdafactorOptions& options, const Shape& shape) {
  return LayoutOf(options, shape).factored;
}

int64_t AdafactorState::bytes() const {
  int64_t total = 0;
  for (const Tensor* t : {&row, &col, &full, &momentum})
    if (t->defined()) total += static_cast<int64_t>(t->nbytes());
  return total;
}

AdafactorState NewAdafactorState(const AdafactorOptions& o, const Shape& shape, DType dtype, Device device) {
  BATON_CHECK(dtype == DType::kF32 || dtype == DType::kF64,
              "adafactor updates fp32 or fp64 parameters, not " << DTypeName(dtype));
  const StateShapes ss = ShapesOf(o, shape);
  MemoryScope scope(MemoryCategory::kOptimizer);
  AdafactorState s;
  s.factored = ss.factored;
  if (ss.has_row) {
    s.row = Tensor::Zeros(ss.row, dtype, device);
    s.col = Tensor::Zeros(ss.col, dtype, device);
  }
  if (ss.has_full) s.full = Tensor::Zeros(ss.full, dtype, device);
  if (ss.has_momentum) s.momentum = Tensor::Zeros(ss.full, dtype, device);
  return s;
}

std::vector<AdafactorSliceStats> AdafactorUpdate(const AdafactorOptions& o, Param& p, AdafactorState& s,
                                                 int64_t step, double rate, Tensor* device_stats) {
  CheckUpdate(o, p, s, step, rate);
  const Layout l = LayoutOf(o, p.value.shape());
  const double beta2 = Beta2At(o, step);
  if (!p.value.device().is_cpu()) {
    UpdateOnDevice(o, l, p, s, beta2, rate, device_stats);
    return {};
  }
  if (p.value.dtype() == DType::kF64) return UpdateTyped<double>(o, l, p, s, beta2, rate);
  return UpdateTyped<float>(o, l, p, s, beta2, rate);
}

Adafactor::Adafactor(AdafactorOptions options) : options_(options) {
  const Status st = ValidateAdafactorOptions(options_);
  BATON_CHECK(st.ok(), "" << st.message() << " (validate options before constructing the optimizer)");
}

void Adafactor::AddParams(const std::vector<Param*>& params) {
  for (Param* p : params) {
    BATON_CHECK(p != nullptr, "null parameter");
    BATON_CHECK(index_.count(p->name) == 0, "parameter " << p->name << " added twice");
    index_[p->name] = entries_.size();
    Entry e;
    e.param = p;
    e.state = NewAdafactorState(options_, p->value.shape(), p->value.dtype(), p->value.device());
    entries_.push_back(std::move(e));
  }
}

void Adafactor::Step(int64_t step, double rate) {
#if BATON_CUDA
  // GPU parameters: checked and collected here, updated together below.
  std::vector<cuda::AdafactorCudaTensor> on_device;
  for (Entry& e : entries_) {
    if (e.param->value.device().is_cpu()) continue;
    CheckUpdate(options_, *e.param, e.state, step, rate);
    const Layout l = LayoutOf(options_, e.param->value.shape());
    EnsureDeviceStats(l, *e.param, &e.device_stats);
    on_device.push_back(DeviceTensor(l, *e.param, e.state, &e.device_stats));
    e.stats.clear();  // statistics stay on the GPU until last_stats asks for them
    e.stats_on_device = true;
  }
  if (!on_device.empty()) {
    if (device_group_ == nullptr) device_group_ = std::make_shared<cuda::AdafactorCudaGroup>();
    static_cast<cuda::AdafactorCudaGroup*>(device_group_.get())
        ->Update(on_device, DeviceStep(options_, Beta2At(options_, step), rate));
  }
#endif
  for (Entry& e : entries_) {
    if (e.param->value.device().is_cpu()) {
      e.stats = AdafactorUpdate(options_, *e.param, e.state, step, rate);
      e.stats_on_device = false;
    } else {
#if !BATON_CUDA
      AdafactorUpdate(options_, *e.param, e.state, step, rate, &e.device_stats);  // fails: no CUDA backend
#endif
    }
  }
}

int64_t Adafactor::device_table_builds() const {
#if BATON_CUDA
  if (device_group_ != nullptr) return static_cast<const cuda::AdafactorCudaGroup*>(device_group_.get())->table_builds();
#endif
  return 0;
}

int64_t Adafactor::StateBytes() const {
  int64_t total = 0;
  for (const Entry& e : entries_) total += e.state.bytes();
  return total;
}

const Adafactor::Entry& Adafactor::Find(const std::string& name) const {
  auto it = index_.find(name);
  BATON_CHECK(it != index_.end(), "no adafactor state for parameter " << name);
  return entries_[it->second];
}

const AdafactorState& Adafactor::state(const std::string& name) const { return Find(name).state; }

AdafactorState& Adafactor::mutable_state(const std::string& name) {
  return const_cast<Entry&>(Find(name)).state;
}

const std::vector<AdafactorSliceStats>& Adafactor::last_stats(const std::string& name) const {
  const Entry& e = Find(name);
  if (e.stats_on_device) {
    e.stats = AdafactorStatsFromDevice(e.device_stats);
    e.stats_on_device = false;
  }
  return e.stats;
}

std::vector<std::string> Adafactor::param_names() const {
  std::vector<std::string> names;
  for (const Entry& e : entries_) names.push_back(e.param->name);
  return names;
}

int64_t AdamStateBytes(const std::vector<Param*>& params) {
  int64_t total = 0;
  for (const Param* p : params) total += 2 * static_cast<int64_t>(sizeof(float)) * p->value.numel();
  return total;
}

}  // namespace baton
