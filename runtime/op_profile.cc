#include "runtime/op_profile.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include "runtime/timer.h"
#if BATON_CUDA
#include "runtime/cuda_device.h"
#include "runtime/device.h"
#endif

namespace baton {
namespace {

struct Interval {
  const char* name;
  double host_start = 0, host_end = 0;
#if BATON_CUDA
  cudaEvent_t start = nullptr, end = nullptr;
#endif
};

struct State {
  bool enabled = false, phases_only = false;
  std::mutex mu;
  std::vector<Interval> open;  // recorded this period; events reused across periods
#if BATON_CUDA
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> spare;
#endif
  Timer clock;
};

State& Get() {
  static State* s = new State();  // never destroyed: events outlive static teardown order
  return *s;
}

bool OnGpu() {
#if BATON_CUDA
  return CudaDeviceCount() > 0;
#else
  return false;
#endif
}

}  // namespace

void OpProfile::Enable(bool on, bool phases_only) {
  Get().enabled = on;
  Get().phases_only = phases_only;
}
bool OpProfile::enabled() { return Get().enabled; }

OpProfile::Scope::Scope(const char* name) {
  State& s = Get();
  if (!s.enabled) return;
  if (s.phases_only && std::strncmp(name, "phase: ", 7) != 0) return;
  std::lock_guard<std::mutex> lock(s.mu);
  Interval iv;
  iv.name = name;
  iv.host_start = s.clock.Seconds();
#if BATON_CUDA
  if (OnGpu()) {
    if (s.spare.empty()) {
      cudaEvent_t a, b;
      BATON_CUDA_CHECK(cudaEventCreate(&a));
      BATON_CUDA_CHECK(cudaEventCreate(&b));
      s.spare.emplace_back(a, b);
    }
    std::tie(iv.start, iv.end) = s.spare.back();
    s.spare.pop_back();
    BATON_CUDA_CHECK(cudaEventRecord(iv.start, cuda::ComputeStream()));
  }
#endif
  slot_ = static_cast<int>(s.open.size());
  s.open.push_back(iv);
}

OpProfile::Scope::~Scope() {
  if (slot_ < 0) return;
  State& s = Get();
  std::lock_guard<std::mutex> lock(s.mu);
  Interval& iv = s.open[static_cast<size_t>(slot_)];
  iv.host_end = s.clock.Seconds();
#if BATON_CUDA
  if (iv.end) BATON_CUDA_CHECK(cudaEventRecord(iv.end, cuda::ComputeStream()));
#endif
}

std::vector<OpProfile::Entry> OpProfile::Collect() {
  State& s = Get();
  std::lock_guard<std::mutex> lock(s.mu);
#if BATON_CUDA
  if (OnGpu()) cuda::Synchronize();
#endif
  std::map<std::string, Entry> by_name;
  for (Interval& iv : s.open) {
    double ms = (iv.host_end - iv.host_start) * 1e3;
#if BATON_CUDA
    if (iv.start) {
      float gpu_ms = 0;
      BATON_CUDA_CHECK(cudaEventElapsedTime(&gpu_ms, iv.start, iv.end));
      ms = gpu_ms;
      s.spare.emplace_back(iv.start, iv.end);
    }
#endif
    Entry& e = by_name[iv.name];
    e.name = iv.name;
    ++e.calls;
    e.ms += ms;
  }
  s.open.clear();
  std::vector<Entry> out;
  for (auto& [name, e] : by_name) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.ms > b.ms; });
  return out;
}

}  // namespace baton
