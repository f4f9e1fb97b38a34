#include "runtime/device.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "runtime/status.h"

namespace baton {
namespace {

// 64-byte aligned host memory with byte accounting.
class CpuAllocator : public Allocator {
 public:
  void* Allocate(size_t bytes) override {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = rounded == 0 ? nullptr : std::aligned_alloc(64, rounded);
    BATON_CHECK(rounded == 0 || p != nullptr, "host allocation of " << bytes << " bytes failed");
    int64_t now = current_.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    allocations_.fetch_add(1);
    return p;
  }
  void Free(void* ptr, size_t bytes) override {
    std::free(ptr);
    current_.fetch_sub(static_cast<int64_t>(bytes));
  }
  MemoryStats Stats() const override { return {current_.load(), peak_.load(), allocations_.load()}; }
  void ResetPeak() override { peak_.store(current_.load()); }

 private:
  std::atomic<int64_t> current_{0}, peak_{0}, allocations_{0};
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
