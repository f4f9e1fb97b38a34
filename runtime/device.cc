#include "runtime/device.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <cstdlib>
#include <cstring>

#include "runtime/status.h"

namespace baton {
namespace {

// 64-byte aligned host memory with byte accounting. Freed blocks are kept
// and handed out again for the same size: a training step allocates the same
// shapes every time, and returning big blocks to the OS each step would make
// every step pay page faults on fresh memory.
class CpuAllocator : public Allocator {
 public:
  void* Allocate(size_t bytes) override {
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(rounded);
      if (it != cache_.end()) {
        p = it->second;
        cache_.erase(it);
        cached_bytes_ -= static_cast<int64_t>(rounded);
      }
      current_ += static_cast<int64_t>(bytes);
      peak_ = std::max(peak_, current_);
      ++allocations_;
    }
    if (!p && rounded > 0) {
      p = std::aligned_alloc(64, rounded);
      BATON_CHECK(p != nullptr, "host allocation of " << bytes << " bytes failed");
    }
    return p;
  }
  void Free(void* ptr, size_t bytes) override {
    const size_t rounded = (bytes + 63) / 64 * 64;
    std::lock_guard<std::mutex> lock(mu_);
    current_ -= static_cast<int64_t>(bytes);
    if (ptr) {
      cache_.emplace(rounded, ptr);
      cached_bytes_ += static_cast<int64_t>(rounded);
    }
  }
  MemoryStats Stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return {current_, peak_, allocations_, cached_bytes_};
  }
  void ResetPeak() override {
    std::lock_guard<std::mutex> lock(mu_);
    peak_ = current_;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_multimap<size_t, void*> cache_;
  int64_t current_ = 0, peak_ = 0, allocations_ = 0, cached_bytes_ = 0;
};

}  // namespace

std::string Device::ToString() const {
  return is_cpu() ? "cpu" : "cuda:" + std::to_string(index);
}

Allocator& AllocatorFor(Device device) {
  static CpuAllocator cpu;
  BATON_CHECK(device.is_cpu(), "no allocator for " << device.ToString() << " in this build (configure with -DBATON_CUDA=ON)");
  return cpu;
}

Buffer::Buffer(Device device, size_t bytes)
    : device_(device), bytes_(bytes), data_(AllocatorFor(device).Allocate(bytes)) {}

Buffer::~Buffer() { AllocatorFor(device_).Free(data_, bytes_); }

}  // namespace baton
