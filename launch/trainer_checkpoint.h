// What a pipeline rank puts into a checkpoint and takes out of one. Tensors are
// stored by logical name, so any layout can load what any other wrote:
//   <param name>                      the parameter (wte, blocks.3.attn.qkv.weight, ...)
//   adafactor/<param name>/row|col    AdaFactor's factored second moment
//   adafactor/<param name>/full       the unfactored second moment
//   adafactor/<param name>/momentum   the first moment (optim.beta1 > 0)
// Each tensor is written by the one rank that owns it: the data-parallel
// replica that owns its optimizer state, on the stage that holds it; the tied
// token table once, from the embedding's copy.
#pragma once

#include <string>
#include <vector>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/tensor_records.h"
#include "layers/model_spec.h"
#include "pipeline/pipeline_trainer.h"

namespace baton {

std::string AdafactorStateTensorName(const std::string& param, const std::string& part);
bool IsAdafactorStateTensorName(const std::string& name);

// The records this rank writes (views of the live tensors: write them before the next step).
std::vector<TensorRecord> TrainerCheckpointRecords(const PipelineTrainer& trainer);

// Refuses a checkpoint written for another model (every differing field named).
Status CheckCheckpointModel(const CheckpointReader& reader, const ModelSpec& spec);
// The same comparison for any two models: `what` names where `saved` comes from.
Status CompareModelSpecs(const ModelSpec& saved, const ModelSpec& spec, const std::string& what);

// Sets this rank's parameters, and the AdaFactor state of those it owns, from
// the checkpoint. When the checkpoint has no optimizer state (imported or
// grown weights), the state starts at zero. Errors name the tensor.
Status LoadTrainerCheckpoint(const CheckpointReader& reader, PipelineTrainer* trainer);

}  // namespace baton
