#include "launch/compute_device.h"

#include "layers/ops.h"

namespace baton {

Result<Device> ComputeDevice(const TrainConfig& train, const MpiWorld& world) {
  if (train.device() != TrainConfig::CUDA) return Device::CPU();
  const int gpus = CudaDeviceCount();
  if (gpus == 0)
    return Status::InvalidArgument("train.device = CUDA, but rank " + std::to_string(world.rank()) + " on " +
                                   world.host() + " has no GPU: " + CudaUnavailableReason());
  if (world.local_rank() >= gpus)
    return Status::InvalidArgument("train.device = CUDA: " + std::to_string(world.local_size()) + " ranks on " +
                                   world.host() + " but " + std::to_string(gpus) +
                                   " GPU(s) there (one rank per GPU: start fewer ranks per node)");
  UseCudaDevice(world.local_rank());
  return Device::CUDA(world.local_rank());
}

std::string DeviceDescription(Device device) {
  if (device.is_cpu()) return ops::BackendDescription();
  return "CUDA on " + CudaDeviceDescription() + "; bf16 compute, fp32 master weights, gradients and AdaFactor state";
}

}  // namespace baton
