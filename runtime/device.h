// Devices and memory. A Device names where bytes live; an Allocator hands out
// and takes back buffers on one device, caches freed blocks for reuse, and
// keeps byte counts (current and peak) so that memory can be reported. The CUDA backend adds a
// CudaAllocator behind the same interface; nothing above runtime/ changes.
#pragma once

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
  bool is_cpu() const { return kind == DeviceKind::kCPU; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string ToString() const;
};

struct MemoryStats {
  int64_t current_bytes = 0;  // in use by tensors
  int64_t peak_bytes = 0;     // highest current_bytes since the last ResetPeak
  int64_t allocations = 0;    // number of Allocate calls so far
  int64_t cached_bytes = 0;   // freed, kept for reuse
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* Allocate(size_t bytes) = 0;  // aborts when out of memory
  virtual void Free(void* ptr, size_t bytes) = 0;
  virtual MemoryStats Stats() const = 0;
  virtual void ResetPeak() = 0;
};

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
  void* data_;
};

}  // namespace baton
