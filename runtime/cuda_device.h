// The CUDA side of runtime/: error checks, the compute stream, device
// selection and properties. Only compiled with BATON_CUDA=ON; code outside
// runtime/, layers/cuda/ and optim/cuda/ reaches the GPU through Tensor, the
// allocator and the ops, never through this header.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace baton::cuda {

// Logs "<what> failed: <CUDA error> at file:line" and aborts the process (and
// so the MPI job): a CUDA error leaves the device in an unknown state.
[[noreturn]] void Fail(const char* what, const std::string& error, const char* file, int line);

#define BATON_CUDA_CHECK(expr)                                                        \
  do {                                                                                \
    const cudaError_t _baton_err = (expr);                                            \
    if (_baton_err != cudaSuccess)                                                    \
      ::baton::cuda::Fail(#expr, cudaGetErrorString(_baton_err), __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: catches bad launch configurations at the launch site.
#define BATON_CUDA_CHECK_LAUNCH(kernel) BATON_CUDA_CHECK(cudaPeekAtLastError())

// Number of usable GPUs; 0 when there is no device or no driver (never aborts).
int DeviceCount();
// Why DeviceCount() is 0, for skip messages and errors ("no CUDA driver", ...).
std::string NoDeviceReason();

// Makes `index` this process's GPU; call before any other CUDA work.
void UseDevice(int index);
int CurrentDevice();

// The stream every kernel, copy and cuBLASLt call of this process runs on.
// Work on it is ordered; host code waits only where it needs a value back.
cudaStream_t ComputeStream();
// Waits for everything enqueued on the compute stream.
void Synchronize();

struct DeviceProperties {
  std::string name;
  int sm_count = 0;
  int compute_major = 0, compute_minor = 0;
  size_t total_bytes = 0;
  size_t shared_bytes_per_block_optin = 0;
  std::string pci_bus_id;  // "0000:1B:00.0": tells GPUs of one node apart in logs
};
const DeviceProperties& Properties();

// A scratch buffer on the device that grows to the largest size asked for and
// is reused (cuBLASLt workspace, reduction partials); counted as workspace.
// Valid until the next call with a larger size; only for work on the compute stream.
void* Workspace(size_t bytes, int slot = 0);

}  // namespace baton::cuda
