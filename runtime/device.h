// Devices and memory. A Device names where bytes live; an Allocator hands out
// and takes back buffers on one device, caches freed blocks for reuse (a
// training step allocates the same sizes every time, so after the first step
// no call reaches cudaMalloc or the OS), and keeps byte counts, current and
// peak, in total and per MemoryCategory, so that memory can be reported.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace baton {

enum class DeviceKind : uint8_t { kCPU, kCUDA };

struct Device {
  DeviceKind kind = DeviceKind::kCPU;
  int index = 0;

  static Device CPU() { return Device{}; }
  static Device CUDA(int index = 0) { return Device{DeviceKind::kCUDA, index}; }
  bool is_cpu() const { return kind == DeviceKind::kCPU; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string ToString() const;
};

// GPUs this process can use: 0 in a CPU-only build, without a driver or without a device.
int CudaDeviceCount();
// Why CudaDeviceCount() is 0 ("this build has no CUDA backend", "no CUDA driver", ...).
std::string CudaUnavailableReason();

// What an allocation is for. The category is taken from the innermost live
// MemoryScope of the allocating thread when the buffer is created.
enum class MemoryCategory : uint8_t {
  kOther, kWeights, kMaster, kGradients, kOptimizer, kActivations, kWorkspace, kCount
};
const char* MemoryCategoryName(MemoryCategory c);  // "weights", "master", ...

class MemoryScope {
 public:
  explicit MemoryScope(MemoryCategory category);
  ~MemoryScope();
  MemoryScope(const MemoryScope&) = delete;
  MemoryScope& operator=(const MemoryScope&) = delete;
  static MemoryCategory Current();

 private:
  MemoryCategory previous_;
};

struct MemoryStats {
  static constexpr size_t kCategories = static_cast<size_t>(MemoryCategory::kCount);
  int64_t current_bytes = 0;  // in use by tensors
  int64_t peak_bytes = 0;     // highest current_bytes since the last ResetPeak
  int64_t allocations = 0;    // number of Allocate calls so far
  int64_t cached_bytes = 0;   // freed, kept for reuse
  int64_t device_allocations = 0;  // calls that reached the device's own allocator (cudaMalloc, aligned_alloc)
  int64_t reserved_peak_bytes = 0;  // highest (in use + cached) ever: what the device really gave us
  std::array<int64_t, kCategories> category_current{};
  std::array<int64_t, kCategories> category_peak{};  // each category's own high-water mark since ResetPeak
};

// "peak 12.3 GiB (weights 0.25, master 0.5, ..., activations 10.2 GiB; reserved 13.0 GiB)".
std::string DescribeMemory(const MemoryStats& stats);

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Aborts with the device's message when out of memory (after returning cached blocks).
  virtual void* Allocate(size_t bytes, MemoryCategory category) = 0;
  virtual void Free(void* ptr, size_t bytes, MemoryCategory category) = 0;
  virtual MemoryStats Stats() const = 0;
  virtual void ResetPeak() = 0;
};

// Makes cuda:index this process's GPU; call before any GPU tensor exists.
void UseCudaDevice(int index);
// e.g. "NVIDIA H200 (cuda:0, 132 SMs, 139.8 GiB)".
std::string CudaDeviceDescription();

// The process-wide allocator for a device.
Allocator& AllocatorFor(Device device);

// Bytes owned on one device; freed through its allocator.
class Buffer {
 public:
  Buffer(Device device, size_t bytes);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  Device device_;
  size_t bytes_;
  MemoryCategory category_;
  void* data_;
};

// Byte copies and fills across devices, ordered with the device's compute
// stream; a copy to the host returns when the bytes are there.
void CopyBytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void ZeroBytes(void* dst, Device device, size_t bytes);
// Waits until the device has finished all work queued so far (a no-op on the CPU).
void SynchronizeDevice(Device device);

}  // namespace baton
