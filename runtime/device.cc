#include "runtime/device.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "runtime/status.h"
#if BATON_CUDA
#include "runtime/cuda_device.h"
#endif

namespace baton {
namespace {

thread_local MemoryCategory current_category = MemoryCategory::kOther;

// Freed blocks are kept, keyed by their rounded size, and handed out again
// for the same size class. Sizes are rounded (512 B granules up to 1 MiB, then
// 2 MiB) so that slightly different requests share blocks. When the device
// refuses an allocation, every cached block is given back and the request
// retried once before failing.
class CachingAllocator : public Allocator {
 public:
  using RawAllocate = void* (*)(size_t bytes);  // nullptr when out of memory
  using RawFree = void (*)(void* ptr);
  CachingAllocator(std::string device, RawAllocate raw_allocate, RawFree raw_free)
      : device_(std::move(device)), raw_allocate_(raw_allocate), raw_free_(raw_free) {}

  void* Allocate(size_t bytes, MemoryCategory category) override {
    const size_t rounded = Round(bytes);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(rounded);
      if (it != cache_.end()) {
        p = it->second;
        cache_.erase(it);
        cached_ -= static_cast<int64_t>(rounded);
      }
      Count(static_cast<int64_t>(bytes), category);
      ++allocations_;
    }
    if (p || rounded == 0) return p;
    p = raw_allocate_(rounded);
    if (!p) {
      ReleaseCached();
      p = raw_allocate_(rounded);
    }
    std::lock_guard<std::mutex> lock(mu_);
    BATON_CHECK(p != nullptr, "out of memory on " << device_ << ": " << bytes << " bytes requested, "
                                                  << current_ << " in use (" << Breakdown() << ")");
    ++device_allocations_;
    reserved_ += static_cast<int64_t>(rounded);
    reserved_peak_ = std::max(reserved_peak_, reserved_);
    return p;
  }

  void Free(void* ptr, size_t bytes, MemoryCategory category) override {
    std::lock_guard<std::mutex> lock(mu_);
    Count(-static_cast<int64_t>(bytes), category);
    if (ptr) {
      cache_.emplace(Round(bytes), ptr);
      cached_ += static_cast<int64_t>(Round(bytes));
    }
  }

  MemoryStats Stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    MemoryStats s;
    s.current_bytes = current_;
    s.peak_bytes = peak_;
    s.allocations = allocations_;
    s.cached_bytes = cached_;
    s.device_allocations = device_allocations_;
    s.reserved_peak_bytes = reserved_peak_;
    s.category_current = category_current_;
    s.category_peak = category_peak_;
    return s;
  }

  void ResetPeak() override {
    std::lock_guard<std::mutex> lock(mu_);
    peak_ = current_;
    category_peak_ = category_current_;
  }

 private:
  static size_t Round(size_t bytes) {
    constexpr size_t kSmall = 512, kLarge = 2 << 20;
    const size_t granule = bytes <= (1 << 20) ? kSmall : kLarge;
    return (bytes + granule - 1) / granule * granule;
  }
  void Count(int64_t delta, MemoryCategory category) {
    const size_t c = static_cast<size_t>(category);
    current_ += delta;
    peak_ = std::max(peak_, current_);
    category_current_[c] += delta;
    category_peak_[c] = std::max(category_peak_[c], category_current_[c]);
  }
  void ReleaseCached() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, p] : cache_) {
      raw_free_(p);
      reserved_ -= static_cast<int64_t>(size);
    }
    cache_.clear();
    cached_ = 0;
  }
  std::string Breakdown() const {
    std::string s;
    for (size_t c = 0; c < MemoryStats::kCategories; ++c)
      if (category_current_[c])
        s += (s.empty() ? "" : ", ") + std::string(MemoryCategoryName(static_cast<MemoryCategory>(c))) + " " +
             std::to_string(category_current_[c]);
    return s + "; " + std::to_string(cached_) + " cached";
  }

  const std::string device_;
  const RawAllocate raw_allocate_;
  const RawFree raw_free_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> cache_;
  int64_t current_ = 0, peak_ = 0, allocations_ = 0, cached_ = 0, device_allocations_ = 0;
  int64_t reserved_ = 0, reserved_peak_ = 0;
  std::array<int64_t, MemoryStats::kCategories> category_current_{}, category_peak_{};
};

void* HostAllocate(size_t bytes) { return std::aligned_alloc(64, bytes); }
void HostFree(void* p) { std::free(p); }

#if BATON_CUDA
void* CudaAllocate(size_t bytes) {
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky out-of-memory error; the caller retries or fails
    return nullptr;
  }
  return p;
}
void CudaFree(void* p) { BATON_CUDA_CHECK(cudaFree(p)); }
#endif

}  // namespace

std::string Device::ToString() const {
  return is_cpu() ? "cpu" : "cuda:" + std::to_string(index);
}

const char* MemoryCategoryName(MemoryCategory c) {
  switch (c) {
    case MemoryCategory::kOther: return "other";
    case MemoryCategory::kWeights: return "weights";
    case MemoryCategory::kMaster: return "master";
    case MemoryCategory::kGradients: return "gradients";
    case MemoryCategory::kOptimizer: return "optimizer";
    case MemoryCategory::kActivations: return "activations";
    case MemoryCategory::kWorkspace: return "workspace";
    case MemoryCategory::kCount: break;
  }
  return "?";
}

std::string DescribeMemory(const MemoryStats& s) {
  auto gib = [](int64_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(b) / (1 << 30));
    return std::string(buf);
  };
  std::string parts;
  for (size_t c = 0; c < MemoryStats::kCategories; ++c)
    if (s.category_peak[c] > 0)
      parts += (parts.empty() ? "" : ", ") + std::string(MemoryCategoryName(static_cast<MemoryCategory>(c))) + " " +
               gib(s.category_peak[c]);
  return "peak " + gib(s.peak_bytes) + " GiB (category peaks: " + parts + " GiB; reserved at most " +
         gib(s.reserved_peak_bytes) + " GiB)";
}

MemoryScope::MemoryScope(MemoryCategory category) : previous_(current_category) { current_category = category; }
MemoryScope::~MemoryScope() { current_category = previous_; }
MemoryCategory MemoryScope::Current() { return current_category; }

int CudaDeviceCount() {
#if BATON_CUDA
  return cuda::DeviceCount();
#else
  return 0;
#endif
}

std::string CudaUnavailableReason() {
#if BATON_CUDA
  return cuda::NoDeviceReason();
#else
  return "this build has no CUDA backend (configure with -DBATON_CUDA=ON)";
#endif
}

void UseCudaDevice(int index) {
#if BATON_CUDA
  cuda::UseDevice(index);
#else
  BATON_CHECK(false, "cuda:" << index << ": " << CudaUnavailableReason());
#endif
}

std::string CudaDeviceDescription() {
#if BATON_CUDA
  const cuda::DeviceProperties& p = cuda::Properties();
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s (cuda:%d, PCI %s, %d SMs, %.1f GiB)", p.name.c_str(), cuda::CurrentDevice(),
                p.pci_bus_id.c_str(), p.sm_count, static_cast<double>(p.total_bytes) / (1 << 30));
  return buf;
#else
  return CudaUnavailableReason();
#endif
}

Allocator& AllocatorFor(Device device) {
  static CachingAllocator cpu("cpu", HostAllocate, HostFree);
  if (device.is_cpu()) return cpu;
#if BATON_CUDA
  BATON_CHECK(device.index == cuda::CurrentDevice(),
              device.ToString() << " is not this process's GPU (cuda:" << cuda::CurrentDevice() << ")");
  static CachingAllocator gpu("cuda:" + std::to_string(device.index), CudaAllocate, CudaFree);
  return gpu;
#else
  BATON_CHECK(false, "no allocator for " << device.ToString() << ": " << CudaUnavailableReason());
#endif
}

Buffer::Buffer(Device device, size_t bytes)
    : device_(device), bytes_(bytes), category_(MemoryScope::Current()),
      data_(AllocatorFor(device).Allocate(bytes, category_)) {}

Buffer::~Buffer() { AllocatorFor(device_).Free(data_, bytes_, category_); }

void CopyBytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if BATON_CUDA
  BATON_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, cuda::ComputeStream()));
  // The host may read (or reuse) its side as soon as this returns.
  if (dst_device.is_cpu() || src_device.is_cpu()) cuda::Synchronize();
#else
  BATON_CHECK(false, "copy between " << src_device.ToString() << " and " << dst_device.ToString() << ": "
                                     << CudaUnavailableReason());
#endif
}

void SynchronizeDevice(Device device) {
  if (device.is_cpu()) return;
#if BATON_CUDA
  cuda::Synchronize();
#endif
}

void ZeroBytes(void* dst, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device.is_cpu()) {
    std::memset(dst, 0, bytes);
    return;
  }
#if BATON_CUDA
  BATON_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, cuda::ComputeStream()));
#else
  BATON_CHECK(false, "zero bytes on " << device.ToString() << ": " << CudaUnavailableReason());
#endif
}

}  // namespace baton
