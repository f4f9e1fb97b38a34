// AdaFactor's update of many parameters at once (AdafactorCudaGroup, see
// adafactor_update.h): multi-tensor apply over the stages of
// adafactor_kernels.cuh.
//
// A batch of parameters (one dtype) is run as one launch per stage. The
// launch's blocks are the concatenation of the blocks each parameter's own
// launch would have (its plan, PlanTensor, is the one AdafactorUpdateCuda
// uses): for every stage the device table holds the prefix sums of the
// parameters' block counts, and a block finds its parameter there (warp 0,
// 32-way search), turns its offset into that launch's (x, y, slice)
// coordinates and runs the stage's body. Same body, same plan, same
// coordinates: the same bits as the per-parameter path. Parameters of a
// batch share one scratch buffer, each at its own offset.
//
// The table (plans and block offsets) is rebuilt only when the list of
// tensors changes; it is written by small kernels that carry the bytes as
// their parameters, so a rebuild is ordered on the compute stream like any
// other work and never waits for the GPU (a pageable host-to-device copy
// may).
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "optim/cuda/adafactor_kernels.cuh"
#include "optim/cuda/adafactor_update.h"
#include "runtime/cuda_device.h"
#include "runtime/device.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton::cuda {
namespace {

using namespace adafactor;  // NOLINT: the kernel bodies and their constants

enum Stage { kPartials, kFinish, kSums, kScalars, kApply, kStages };

constexpr int64_t kBatchScratchBytes = int64_t{64} << 20;  // per batch, unless one parameter needs more
constexpr int64_t kMaxGridX = (int64_t{1} << 31) - 1;
constexpr int kPlanWords = sizeof(TensorPlan) / sizeof(uint64_t);
static_assert(sizeof(TensorPlan) % sizeof(uint64_t) == 0, "TensorPlan is copied as 8-byte words");
static_assert(std::is_trivially_copyable<TensorPlan>::value, "TensorPlan is copied as bytes");

// Blocks of each stage in the parameter's own launches (all slices).
std::array<int64_t, kStages> StageBlocks(const TensorPlan& p) {
  std::array<int64_t, kStages> b{};
  b[kPartials] = p.factored ? p.col_tiles * p.row_tiles * p.slices : 0;
  b[kFinish] = p.factored ? p.finish_blocks * p.slices : 0;
  b[kSums] = p.parts * p.slices;
  b[kScalars] = p.slices;
  b[kApply] = p.apply_blocks * p.slices;
  return b;
}

// The parameter whose blocks include block b: the largest t < count with
// starts[t] <= b (starts: count + 1 non-decreasing offsets, starts[0] = 0; a
// parameter without blocks in this stage has starts[t] == starts[t + 1] and is
// never chosen). Warp 0 narrows the range 32-fold per round (2 rounds up to
// 1024 parameters); the answer goes to every thread.
__device__ __forceinline__ int FindTensor(const int64_t* __restrict__ starts, int count, int64_t b) {
  __shared__ int found;
  if (threadIdx.x < kWarp) {
    const int lane = threadIdx.x;
    int lo = 0, len = count;  // the answer is in [lo, lo + len); starts[lo] <= b
    while (len > 1) {
      const int step = (len + kWarp - 1) / kWarp;
      const int idx = lo + lane * step;
      const bool ok = idx < lo + len && starts[idx] <= b;
      const unsigned mask = __ballot_sync(0xffffffffu, ok);  // lane 0 always
      const int last = kWarp - 1 - __clz(mask);
      const int next = lo + last * step;
      len = min(step, lo + len - next);
      lo = next;
    }
    if (lane == 0) found = lo;
  }
  __syncthreads();
  return found;
}

// The block's parameter and its offset among that parameter's blocks.
struct Located {
  TensorPlan plan;
  int64_t local;
};

__device__ __forceinline__ Located Locate(const TensorPlan* __restrict__ plans, const int64_t* __restrict__ starts,
                                          int count) {
  const int64_t b = blockIdx.x;
  const int t = FindTensor(starts, count, b);
  return {plans[t], b - starts[t]};
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    GroupPartials(const TensorPlan* plans, const int64_t* starts, int count, double* scratch, double eps1) {
  const Located l = Locate(plans, starts, count);
  const int64_t rest = l.local / l.plan.col_tiles;
  FactoredPartials(MakeView<T>(l.plan, scratch), l.local % l.plan.col_tiles, rest % l.plan.row_tiles,
                   rest / l.plan.row_tiles, eps1);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    GroupFinish(const TensorPlan* plans, const int64_t* starts, int count, double* scratch, StepScalars k) {
  const Located l = Locate(plans, starts, count);
  FinishFactors(MakeView<T>(l.plan, scratch), l.local % l.plan.finish_blocks, l.local / l.plan.finish_blocks,
                k.beta2, k.one_minus_beta2);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    GroupSums(const TensorPlan* plans, const int64_t* starts, int count, double* scratch, StepScalars k) {
  const Located l = Locate(plans, starts, count);
  const View<T> v = MakeView<T>(l.plan, scratch);
  const int64_t bx = l.local % l.plan.parts, s = l.local / l.plan.parts;
  if (l.plan.factored) FactoredSums(v, bx, s);
  else FullSums(v, bx, s, k);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    GroupScalars(const TensorPlan* plans, const int64_t* starts, int count, double* scratch, StepScalars k) {
  const Located l = Locate(plans, starts, count);
  SliceScalars(MakeView<T>(l.plan, scratch), l.local, k);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    GroupApply(const TensorPlan* plans, const int64_t* starts, int count, double* scratch, StepScalars k) {
  const Located l = Locate(plans, starts, count);
  const View<T> v = MakeView<T>(l.plan, scratch);
  const int64_t gx = l.plan.apply_blocks, bx = l.local % gx, s = l.local / gx;
  if (l.plan.factored) FactoredApply(v, bx, gx, s, k);
  else FullApply(v, bx, gx, s, k);
}

// Table upload: the words ride in the kernel's parameters (under 4 KiB).
constexpr int kUploadWords = 496;
struct UploadChunk {
  uint64_t words[kUploadWords];
};

__global__ void UploadWords(UploadChunk chunk, int count, uint64_t* dst) {
  for (int i = threadIdx.x; i < count; i += blockDim.x) dst[i] = chunk.words[i];
}

bool SameTensor(const AdafactorCudaTensor& a, const AdafactorCudaTensor& b) {
  return a.dtype == b.dtype && a.x == b.x && a.g == b.g && a.row == b.row && a.col == b.col && a.full == b.full &&
         a.momentum == b.momentum && a.slices == b.slices && a.n == b.n && a.m == b.m && a.factored == b.factored &&
         a.stats == b.stats;
}

// The tensors of a group are updated concurrently, so no buffer written by one
// (parameter, state, statistics) may overlap another's. Checked at each rebuild.
void CheckDisjoint(const std::vector<AdafactorCudaTensor>& tensors, bool momentum) {
  struct Range {
    uintptr_t begin, end;
    size_t tensor;
  };
  std::vector<Range> ranges;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const AdafactorCudaTensor& t = tensors[i];
    const int64_t elem = t.dtype == DType::kF64 ? 8 : 4, nm = t.slices * t.n * t.m;
    if (nm == 0) continue;
    auto add = [&](const void* p, int64_t bytes) {
      if (p != nullptr && bytes > 0)
        ranges.push_back({reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + bytes, i});
    };
    add(t.x, nm * elem);
    if (t.factored) {
      add(t.row, t.slices * t.n * elem);
      add(t.col, t.slices * t.m * elem);
    } else {
      add(t.full, nm * elem);
    }
    if (momentum) add(t.momentum, nm * elem);
    add(t.stats, t.slices * 3 * static_cast<int64_t>(sizeof(double)));
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t k = 1; k < ranges.size(); ++k)
    BATON_CHECK(ranges[k].begin >= ranges[k - 1].end, "adafactor: tensors " << ranges[k - 1].tensor << " and "
                                                                            << ranges[k].tensor
                                                                            << " of one step share memory");
}

}  // namespace

struct AdafactorCudaGroup::Impl {
  struct Batch {
    DType dtype = DType::kF32;
    int count = 0;
    int64_t plans_word = 0;                    // where its plans start in the table
    std::array<int64_t, kStages> starts_word{};  // where each stage's block offsets start
    std::array<int64_t, kStages> blocks{};       // each stage's grid
  };

  // What the table was built for.
  std::vector<AdafactorCudaTensor> key;
  bool key_momentum = false;
  // The plan.
  std::vector<Batch> batches;
  int64_t scratch_doubles = 0;  // the largest batch's
  std::vector<size_t> alone;    // tensors updated by AdafactorUpdateCuda (empty ones, or too many blocks)
  Tensor table;                 // u64 words, stored as f64
  int64_t builds = 0;

  void Rebuild(const std::vector<AdafactorCudaTensor>& tensors, const AdafactorCudaStep& step);
  template <typename T>
  void Launch(const Batch& b, double* scratch, const StepScalars& k) const;
};

void AdafactorCudaGroup::Impl::Rebuild(const std::vector<AdafactorCudaTensor>& tensors, const AdafactorCudaStep& step) {
  CheckDisjoint(tensors, step.beta1 > 0);
  key = tensors;
  key_momentum = step.beta1 > 0;
  batches.clear();
  alone.clear();
  scratch_doubles = 0;
  std::vector<uint64_t> words;
  auto push = [&](const void* data, size_t count) {
    const size_t at = words.size();
    words.resize(at + count);
    std::memcpy(words.data() + at, data, count * sizeof(uint64_t));
  };

  std::vector<TensorPlan> plans;
  std::array<int64_t, kStages> blocks{};
  int64_t scratch = 0;
  auto flush = [&](DType dtype) {
    if (plans.empty()) return;
    Batch b;
    b.dtype = dtype;
    b.count = static_cast<int>(plans.size());
    b.plans_word = static_cast<int64_t>(words.size());
    push(plans.data(), plans.size() * kPlanWords);
    for (int st = 0; st < kStages; ++st) {
      b.starts_word[st] = static_cast<int64_t>(words.size());
      std::vector<int64_t> starts(plans.size() + 1, 0);
      for (size_t i = 0; i < plans.size(); ++i) starts[i + 1] = starts[i] + StageBlocks(plans[i])[st];
      push(starts.data(), starts.size());
      b.blocks[st] = starts.back();
    }
    batches.push_back(b);
    scratch_doubles = std::max(scratch_doubles, scratch);
    plans.clear();
    blocks = {};
    scratch = 0;
  };
  constexpr int64_t kBudget = kBatchScratchBytes / static_cast<int64_t>(sizeof(double));
  for (const DType dtype : {DType::kF32, DType::kF64}) {
    for (size_t i = 0; i < tensors.size(); ++i) {
      const AdafactorCudaTensor& t = tensors[i];
      if (t.dtype != dtype) continue;
      if (t.slices == 0 || t.n * t.m == 0) {  // nothing to update; statistics zeroed there
        alone.push_back(i);
        continue;
      }
      TensorPlan p = PlanTensor(t, step);
      const std::array<int64_t, kStages> b = StageBlocks(p);
      bool fits = scratch + p.scratch_doubles() <= kBudget, fits_alone = true;
      for (int st = 0; st < kStages; ++st) {
        fits = fits && blocks[st] + b[st] <= kMaxGridX;
        fits_alone = fits_alone && b[st] <= kMaxGridX;
      }
      if (!fits_alone) {
        alone.push_back(i);
        continue;
      }
      if (!fits) flush(dtype);
      p.scratch = scratch;
      scratch += p.scratch_doubles();
      for (int st = 0; st < kStages; ++st) blocks[st] += b[st];
      plans.push_back(p);
    }
    flush(dtype);
  }

  if (!words.empty()) {
    const int64_t need = static_cast<int64_t>(words.size());
    if (!table.defined() || table.numel() < need) {
      MemoryScope scope(MemoryCategory::kOptimizer);
      table = Tensor::Empty({need}, DType::kF64, Device::CUDA(CurrentDevice()));
    }
    uint64_t* dst = static_cast<uint64_t*>(table.raw());
    for (int64_t at = 0; at < need; at += kUploadWords) {
      UploadChunk chunk;
      const int count = static_cast<int>(std::min<int64_t>(kUploadWords, need - at));
      std::memcpy(chunk.words, words.data() + at, static_cast<size_t>(count) * sizeof(uint64_t));
      UploadWords<<<1, kThreads, 0, ComputeStream()>>>(chunk, count, dst + at);
      BATON_CUDA_CHECK_LAUNCH(UploadWords);
    }
  }
  ++builds;
}

template <typename T>
void AdafactorCudaGroup::Impl::Launch(const Batch& b, double* scratch, const StepScalars& k) const {
  cudaStream_t stream = ComputeStream();
  const uint64_t* base = static_cast<const uint64_t*>(table.raw());
  const auto* plans = reinterpret_cast<const TensorPlan*>(base + b.plans_word);
  auto starts = [&](Stage st) { return reinterpret_cast<const int64_t*>(base + b.starts_word[st]); };
  auto grid = [&](Stage st) { return static_cast<unsigned>(b.blocks[st]); };
  if (b.blocks[kPartials] > 0) {
    GroupPartials<T><<<grid(kPartials), kThreads, 0, stream>>>(plans, starts(kPartials), b.count, scratch, k.eps1);
    BATON_CUDA_CHECK_LAUNCH(GroupPartials);
    GroupFinish<T><<<grid(kFinish), kThreads, 0, stream>>>(plans, starts(kFinish), b.count, scratch, k);
    BATON_CUDA_CHECK_LAUNCH(GroupFinish);
  }
  GroupSums<T><<<grid(kSums), kThreads, 0, stream>>>(plans, starts(kSums), b.count, scratch, k);
  BATON_CUDA_CHECK_LAUNCH(GroupSums);
  GroupScalars<T><<<grid(kScalars), kThreads, 0, stream>>>(plans, starts(kScalars), b.count, scratch, k);
  BATON_CUDA_CHECK_LAUNCH(GroupScalars);
  GroupApply<T><<<grid(kApply), kThreads, 0, stream>>>(plans, starts(kApply), b.count, scratch, k);
  BATON_CUDA_CHECK_LAUNCH(GroupApply);
}

AdafactorCudaGroup::AdafactorCudaGroup() : impl_(std::make_unique<Impl>()) {}
AdafactorCudaGroup::~AdafactorCudaGroup() = default;

int64_t AdafactorCudaGroup::table_builds() const { return impl_->builds; }

void AdafactorCudaGroup::Update(const std::vector<AdafactorCudaTensor>& tensors, const AdafactorCudaStep& step) {
  Impl& g = *impl_;
  for (const AdafactorCudaTensor& t : tensors) CheckTensor(t, step);
  bool same = g.builds > 0 && g.key.size() == tensors.size() && g.key_momentum == (step.beta1 > 0);
  for (size_t i = 0; same && i < tensors.size(); ++i) same = SameTensor(g.key[i], tensors[i]);
  if (!same) g.Rebuild(tensors, step);

  for (size_t i : g.alone) AdafactorUpdateCuda(tensors[i], step);
  if (g.batches.empty()) return;
  // After the lone updates: their Workspace request may have moved slot 3.
  double* scratch = static_cast<double*>(Workspace(static_cast<size_t>(g.scratch_doubles) * sizeof(double), 3));
  const StepScalars k = ScalarsOf(step);
  for (const Impl::Batch& b : g.batches) {
    if (b.dtype == DType::kF64) g.Launch<double>(b, scratch, k);
    else g.Launch<float>(b, scratch, k);
  }
}

}  // namespace baton::cuda
