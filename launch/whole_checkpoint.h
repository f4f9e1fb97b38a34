// Checkpoints handled whole by one process, for the commands that transform
// them (import, export, grow): every tensor read into memory by name, and a
// checkpoint written as a single shard (topology 1 stage x 1 replica), which
// `baton train --resume` then loads under any layout.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_writer.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

using NamedTensorMap = std::map<std::string, Tensor>;

// Every tensor of the checkpoint: parameters into *params, AdaFactor state
// (by its checkpoint names) into *state, or skipped when state is null.
Status ReadWholeCheckpoint(const CheckpointReader& reader, NamedTensorMap* params, NamedTensorMap* state = nullptr);

// Refuses a checkpoint directory that already holds committed checkpoints
// (`command` names who refuses: "import", "grow").
Status RequireFreshCheckpointDir(const std::string& ckpt_dir, const std::string& command);

// Writes `params` and `state` as the committed checkpoint `step` of ckpt_dir
// (created when missing). `manifest` gives everything but the topology and
// the tensor index.
Result<CheckpointWriteStats> WriteWholeCheckpoint(const std::string& ckpt_dir, int64_t step,
                                                  const NamedTensorMap& params, const NamedTensorMap& state,
                                                  CheckpointManifest manifest, int keep);

}  // namespace baton
