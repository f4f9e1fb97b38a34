#include "launch/trainer_checkpoint.h"

#include <sstream>

#include "launch/run_spec.h"

namespace baton {
namespace {

// The state tensors of a parameter's AdaFactor state, by part name.
std::vector<std::pair<std::string, Tensor*>> StateParts(AdafactorState& s) {
  std::vector<std::pair<std::string, Tensor*>> parts;
  if (s.factored) {
    parts.push_back({"row", &s.row});
    parts.push_back({"col", &s.col});
  } else {
    parts.push_back({"full", &s.full});
  }
  if (s.momentum.defined()) parts.push_back({"momentum", &s.momentum});
  return parts;
}

TensorRecord WholeTensor(const std::string& name, const Tensor& t) {
  Tensor data = t.To(Device::CPU());  // shards are written from host memory
  if (t.shape().empty()) data = data.Reshape({1});  // records have rank >= 1
  return TensorRecord{name, data.shape(), 0, data.shape()[0], data};
}

Status Fill(const CheckpointReader& reader, const std::string& name, Tensor* dest) {
  BATON_ASSIGN_OR_RETURN(Tensor t, reader.Read(name));
  if (t.numel() != dest->numel() || t.dtype() != dest->dtype() ||
      (t.shape() != dest->shape() && !(dest->shape().empty() && t.shape() == Shape{1})))
    return Status::InvalidArgument("checkpoint " + reader.dir() + ": tensor " + name + " is " + t.Describe() +
                                   ", this run's model needs " + dest->Describe());
  dest->CopyFrom(t.Reshape(dest->shape()));
  return Status::OK();
}

}  // namespace

constexpr char kAdafactorPrefix[] = "adafactor/";

std::string AdafactorStateTensorName(const std::string& param, const std::string& part) {
  return kAdafactorPrefix + param + "/" + part;
}

bool IsAdafactorStateTensorName(const std::string& name) { return name.rfind(kAdafactorPrefix, 0) == 0; }

std::vector<TensorRecord> TrainerCheckpointRecords(const PipelineTrainer& trainer) {
  std::vector<TensorRecord> records;
  for (size_t v = 0; v < trainer.chunk_models().size(); ++v) {
    ShardedAdafactor& opt = trainer.chunk_optimizer(static_cast<int>(v));
    for (size_t i = 0; i < opt.params().size(); ++i) {
      Param* p = opt.params()[i];
      if (!opt.owns(i) || trainer.IsSecondTableCopy(p)) continue;
      records.push_back(WholeTensor(p->name, p->value));
      for (auto& [part, tensor] : StateParts(opt.mutable_state(p->name)))
        records.push_back(WholeTensor(AdafactorStateTensorName(p->name, part), *tensor));
    }
  }
  return records;
}

Status CheckCheckpointModel(const CheckpointReader& reader, const ModelSpec& spec) {
  return CompareModelSpecs(ModelSpecFromConfig(reader.manifest().config().model()), spec, "checkpoint " + reader.dir());
}

Status CompareModelSpecs(const ModelSpec& saved, const ModelSpec& spec, const std::string& what) {
  std::ostringstream diff;
  auto field = [&](const char* name, auto have, auto want) {
    if (have != want) diff << "\n  model." << name << ": " << have << " there, " << want << " in this run's config";
  };
  field("family", saved.family, spec.family);
  field("layers", saved.layers, spec.layers);
  field("hidden", saved.hidden, spec.hidden);
  field("heads", saved.heads, spec.heads);
  field("ffn", saved.ffn, spec.ffn);
  field("vocab", saved.vocab, spec.vocab);
  field("vocab (padded rows)", saved.padded_vocab, spec.padded_vocab);
  field("max_positions", saved.max_positions, spec.max_positions);
  field("rope_style", static_cast<int>(saved.rope_style), static_cast<int>(spec.rope_style));
  field("rope_base", saved.rope_base, spec.rope_base);
  field("norm_eps", saved.norm_eps, spec.norm_eps);
  if (!diff.str().empty())
    return Status::InvalidArgument(what + " was written for a different model:" + diff.str() +
                                   "\n(resume with the model fields it was written with; `baton grow` makes a larger model from it)");
  return Status::OK();
}

Status LoadTrainerCheckpoint(const CheckpointReader& reader, PipelineTrainer* trainer) {
  const bool has_state = reader.manifest().has_optimizer_state();
  for (size_t v = 0; v < trainer->chunk_models().size(); ++v) {
    ShardedAdafactor& opt = trainer->chunk_optimizer(static_cast<int>(v));
    for (size_t i = 0; i < opt.params().size(); ++i) {
      Param* p = opt.params()[i];
      BATON_RETURN_IF_ERROR(Fill(reader, p->name, &p->value));
      p->RefreshCompute();
      if (!opt.owns(i)) continue;
      AdafactorState& state = opt.mutable_state(p->name);
      for (auto& [part, tensor] : StateParts(state)) {
        if (!has_state) {
          tensor->SetZero();
          continue;
        }
        const std::string name = AdafactorStateTensorName(p->name, part);
        if (!reader.Find(name))
          return Status::InvalidArgument(
              "checkpoint " + reader.dir() + " has no " + name + ": it was written with other AdaFactor options (" +
              (part == "momentum" ? std::string("optim.beta1 = 0") : std::string("optim.min_dim_to_factor")) +
              "); resume with the options it was written with");
        BATON_RETURN_IF_ERROR(Fill(reader, name, tensor));
      }
    }
  }
  return Status::OK();
}

}  // namespace baton
