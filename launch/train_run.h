// One training run, from a loaded configuration to the last metrics line:
// data, model, optimizer, the step loop, validation, logs and metrics.jsonl.
#pragma once

#include <string>

#include "proto/config.pb.h"
#include "runtime/mpi_world.h"
#include "runtime/status.h"

namespace baton {

struct TrainRunOptions {
  RunConfig config;
  std::string config_source;  // the config path, for messages
  std::string run_dir;
  std::string resume;  // "", "auto" or a checkpoint step directory (see RunCheckpoints::Resume)
};

Status RunTraining(const TrainRunOptions& options, const MpiWorld& world);

}  // namespace baton
