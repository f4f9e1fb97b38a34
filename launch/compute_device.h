// Which device a rank of `baton train` computes on (train.device), and how the
// run log describes it.
#pragma once

#include <string>

#include "proto/config.pb.h"
#include "runtime/device.h"
#include "runtime/mpi_world.h"
#include "runtime/status.h"

namespace baton {

// CPU, or this rank's GPU (one rank per GPU): BATON_GPU=<index> from the
// environment if set; else the only GPU the rank sees when it is alone on its
// node or CUDA_VISIBLE_DEVICES is set (a scheduler that gives each task one
// GPU); else the rank's index on
// its node. Fails, naming the rank's host and the counts, when the node has
// fewer GPUs than ranks or none.
Result<Device> ComputeDevice(const TrainConfig& train, const MpiWorld& world);

// "CPU (fp32), ..." or "CUDA on NVIDIA H200 (...); bf16 compute, fp32 master weights ...".
std::string DeviceDescription(Device device);

}  // namespace baton
