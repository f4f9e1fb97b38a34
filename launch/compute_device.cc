#include "launch/compute_device.h"

#include <cstdlib>
#include <string>

#include "layers/ops.h"

namespace baton {

Result<Device> ComputeDevice(const TrainConfig& train, const MpiWorld& world) {
  if (train.device() != TrainConfig::CUDA) return Device::CPU();
  const int gpus = CudaDeviceCount();
  const std::string where = "rank " + std::to_string(world.rank()) + " on " + world.host();
  if (gpus == 0) return Status::InvalidArgument("train.device = CUDA, but " + where + " has no GPU: " + CudaUnavailableReason());
  int index = world.local_rank();
  if (const char* chosen = std::getenv("BATON_GPU"); chosen && *chosen) {
    char* end = nullptr;
    const long i = std::strtol(chosen, &end, 10);
    if (*end != '\0' || i < 0 || i >= gpus)
      return Status::InvalidArgument("BATON_GPU=" + std::string(chosen) + " on " + where + ": expected a GPU index in [0, " +
                                     std::to_string(gpus) + ")");
    index = static_cast<int>(i);
  } else if (gpus == 1 && (world.local_size() == 1 || std::getenv("CUDA_VISIBLE_DEVICES"))) {
    index = 0;  // the scheduler gave this rank one GPU (CUDA_VISIBLE_DEVICES): it is the rank's
  } else if (index >= gpus) {
    return Status::InvalidArgument("train.device = CUDA: " + std::to_string(world.local_size()) + " ranks on " +
                                   world.host() + " but " + std::to_string(gpus) +
                                   " GPU(s) there (one rank per GPU: start fewer ranks per node, or set BATON_GPU)");
  }
  UseCudaDevice(index);
  return Device::CUDA(index);
}

std::string DeviceDescription(Device device) {
  if (device.is_cpu()) return ops::BackendDescription();
  return "CUDA on " + CudaDeviceDescription() + "; bf16 compute, fp32 master weights, gradients and AdaFactor state";
}

}  // namespace baton
