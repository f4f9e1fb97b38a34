#include "runtime/cuda_device.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "runtime/device.h"
#include "runtime/log.h"

namespace baton::cuda {
namespace {

struct Probe {
  int count = 0;
  std::string reason;
};

const Probe& ProbeDevices() {
  static const Probe probe = [] {
    Probe p;
    const cudaError_t err = cudaGetDeviceCount(&p.count);
    if (err != cudaSuccess) {
      p.count = 0;
      p.reason = std::string("no usable CUDA device (") + cudaGetErrorString(err) + ")";
      (void)cudaGetLastError();
    } else if (p.count == 0) {
      p.reason = "no CUDA device";
    }
    return p;
  }();
  return probe;
}

int& SelectedDevice() {
  static int device = -1;
  return device;
}

}  // namespace

void Fail(const char* what, const std::string& error, const char* file, int line) {
  std::fprintf(stderr, "%sCUDA error: %s failed: %s (%s:%d)\n", LogPrefix().c_str(), what, error.c_str(), file, line);
  std::fflush(stderr);
  std::abort();
}

int DeviceCount() { return ProbeDevices().count; }
std::string NoDeviceReason() { return ProbeDevices().reason; }

void UseDevice(int index) {
  const int count = DeviceCount();
  if (index < 0 || index >= count)
    Fail("selecting the GPU", "cuda:" + std::to_string(index) + " does not exist (" + std::to_string(count) +
                                  " visible" + (count ? "" : ": " + NoDeviceReason()) + ")",
         __FILE__, __LINE__);
  BATON_CUDA_CHECK(cudaSetDevice(index));
  SelectedDevice() = index;
}

int CurrentDevice() {
  if (SelectedDevice() < 0) UseDevice(0);
  return SelectedDevice();
}

cudaStream_t ComputeStream() {
  static cudaStream_t stream = [] {
    CurrentDevice();
    cudaStream_t s;
    BATON_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return s;
  }();
  return stream;
}

void Synchronize() { BATON_CUDA_CHECK(cudaStreamSynchronize(ComputeStream())); }

const DeviceProperties& Properties() {
  static const DeviceProperties props = [] {
    cudaDeviceProp p;
    BATON_CUDA_CHECK(cudaGetDeviceProperties(&p, CurrentDevice()));
    DeviceProperties d;
    d.name = p.name;
    d.sm_count = p.multiProcessorCount;
    d.compute_major = p.major;
    d.compute_minor = p.minor;
    d.total_bytes = p.totalGlobalMem;
    d.shared_bytes_per_block_optin = p.sharedMemPerBlockOptin;
    char bus[32] = "";
    if (cudaDeviceGetPCIBusId(bus, sizeof(bus), CurrentDevice()) == cudaSuccess) d.pci_bus_id = bus;
    return d;
  }();
  return props;
}

void* Workspace(size_t bytes, int slot) {
  // Grown, never shrunk: the sizes asked for settle after the first step.
  static std::mutex mu;
  static std::vector<std::unique_ptr<Buffer>> slots;
  std::lock_guard<std::mutex> lock(mu);
  if (slot >= static_cast<int>(slots.size())) slots.resize(static_cast<size_t>(slot) + 1);
  auto& buffer = slots[static_cast<size_t>(slot)];
  if (!buffer || buffer->bytes() < bytes) {
    // The old buffer may still be read by queued kernels; returning it to the
    // cache is safe because later users are ordered after them on the stream.
    MemoryScope scope(MemoryCategory::kWorkspace);
    buffer = std::make_unique<Buffer>(Device::CUDA(CurrentDevice()), std::max<size_t>(bytes, 256));
  }
  return buffer->data();
}

}  // namespace baton::cuda
