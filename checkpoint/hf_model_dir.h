// A Hugging Face model directory as the model families' import and export see
// it (hf_roformer.cc; hf_gpt2.cc predates it and keeps private copies):
// config.json next to model.safetensors (or shards listed by
// model.safetensors.index.json). pytorch_model.bin is never read.
#pragma once

#include <string>

#include "checkpoint/safetensors.h"
#include "runtime/status.h"

namespace baton {

// The whole file, or NotFound / IOError naming it.
Result<std::string> ReadHfTextFile(const std::string& path);

// The tensors of hf_dir: model.safetensors, or every shard its index names.
// *source is set to the file that later messages about the tensors should name.
Result<NamedTensors> ReadHfWeights(const std::string& hf_dir, std::string* source);

// Writes out_dir/model.safetensors (metadata {"format": "pt"}, which
// transformers requires) and then out_dir/config.json, so that a directory
// with a config.json is complete. out_dir is created; an existing non-empty
// out_dir is refused rather than overwritten.
Status WriteHfModelDir(const std::string& out_dir, const std::string& config_json, const NamedTensors& tensors);

}  // namespace baton
