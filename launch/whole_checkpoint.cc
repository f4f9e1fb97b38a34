#include "launch/whole_checkpoint.h"

#include "checkpoint/checkpoint_dir.h"
#include "launch/trainer_checkpoint.h"

namespace baton {

Status ReadWholeCheckpoint(const CheckpointReader& reader, NamedTensorMap* params, NamedTensorMap* state) {
  for (const TensorEntry& e : reader.manifest().tensors()) {
    NamedTensorMap* into = IsAdafactorStateTensorName(e.name()) ? state : params;
    if (!into) continue;
    BATON_ASSIGN_OR_RETURN((*into)[e.name()], reader.Read(e.name()));
  }
  return Status::OK();
}

Status RequireFreshCheckpointDir(const std::string& ckpt_dir, const std::string& command) {
  BATON_ASSIGN_OR_RETURN(std::vector<int64_t> existing, ListCommittedSteps(ckpt_dir));
  if (!existing.empty())
    return Status::InvalidArgument(ckpt_dir + " already holds checkpoints; " + command + " into a new run directory");
  return Status::OK();
}

Result<CheckpointWriteStats> WriteWholeCheckpoint(const std::string& ckpt_dir, int64_t step,
                                                  const NamedTensorMap& params, const NamedTensorMap& state,
                                                  CheckpointManifest manifest, int keep) {
  BATON_RETURN_IF_ERROR(PrepareCheckpointDir(ckpt_dir));
  CheckpointWrite w;
  w.ckpt_dir = ckpt_dir;
  w.step = step;
  w.shard_file = "shard-p00-d00.bin";
  for (const NamedTensorMap* tensors : {&params, &state})
    for (const auto& [name, t] : *tensors) w.records.push_back(TensorRecord{name, t.shape(), 0, t.shape()[0], t});
  manifest.clear_tensors();
  Topology* t = manifest.mutable_topology();
  t->Clear();
  t->set_stages(1);
  t->set_replicas(1);
  t->set_virtual_stages(1);
  t->add_shard_files(w.shard_file);
  manifest.set_has_optimizer_state(!state.empty());
  w.manifest = std::move(manifest);
  w.keep = keep;
  return WriteCheckpoint(w, nullptr);
}

}  // namespace baton
