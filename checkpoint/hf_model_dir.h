// What the model families' Hugging Face import and export (hf_gpt2.cc,
// hf_roformer.cc) share: the model directory, config.json next to
// model.safetensors (or shards listed by model.safetensors.index.json;
// pytorch_model.bin is never read), and the checks, with their messages, on
// baton parameters going out and HF tensors coming in.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>

#include "checkpoint/safetensors.h"
#include "layers/model_spec.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

// Parameters by baton name ("wte", "blocks.0.attn.qkv.weight", ...).
using ParamTensors = std::map<std::string, Tensor>;

// The whole file, or NotFound / IOError naming it.
Result<std::string> ReadHfTextFile(const std::string& path);

// The tensors of hf_dir: model.safetensors, or every shard its index names.
// *source is set to the file that later messages about the tensors should name.
Result<NamedTensors> ReadHfWeights(const std::string& hf_dir, std::string* source);

// hf_dir/config.json.
std::string HfConfigPath(const std::string& hf_dir);

// The tensors of hf_dir (ReadHfWeights) made baton parameters by `convert`,
// whose error is prefixed with the weights file and config_path.
Result<ParamTensors> ReadHfParams(const std::string& hf_dir, const std::string& config_path,
                                  const std::function<Result<ParamTensors>(const NamedTensors&)>& convert);

// Writes out_dir/model.safetensors (metadata {"format": "pt"}, which
// transformers requires) and then out_dir/config.json, so that a directory
// with a config.json is complete. out_dir is created; an existing non-empty
// out_dir is refused rather than overwritten.
Status WriteHfModelDir(const std::string& out_dir, const std::string& config_json, const NamedTensors& tensors);

// The size checks every family's representability check makes; `what` starts
// the message ("model (F) cannot be written as ...: "): layers, hidden, heads,
// ffn, vocab and max_positions positive, vocab <= padded_vocab.
Status CheckHfSizes(const ModelSpec& spec, const std::string& what);

// Export: parameter `name` of `params`, host f32 of `shape`; NotFound or
// InvalidArgument naming it otherwise.
Result<const Tensor*> HfExportParam(const ParamTensors& params, const std::string& name, const Shape& shape);

// Export: InvalidArgument naming the first parameter not in `mapped`
// ("parameter P has no <model> counterpart").
Status CheckAllParamsMapped(const ParamTensors& params, const std::set<std::string>& mapped, const std::string& model);

// Import: OK when HF tensor `name` is f32 or f64 of `shape`; else
// "tensor NAME is DESC, expected f32SHAPE (WHAT)".
Status CheckHfTensor(const std::string& name, const Tensor& t, const Shape& shape, const std::string& what);

// Import: `t` (f32 or f64) as f32; f64 values are rounded.
Tensor HfTensorToF32(const Tensor& t);

// The same shape, dtype and bytes: a tied tensor stored twice.
bool SameBytes(const Tensor& a, const Tensor& b);

// Import: Unimplemented unless `copy` (tensor `name`) has the very bytes of the
// tensor `of_name` that baton ties it to: "... differs from OF_NAME: untied
// output embeddings are not supported (baton ties them to wte)".
Status CheckTiedToWte(const std::string& name, const Tensor& copy, const std::string& of_name, const Tensor& of);

// Import: the error for a tensor left over once every parameter is read:
// "tensor NAME SHAPE is not a parameter of a L-layer MODEL (or of baton's version of it)".
Status NotAnHfParameter(const std::string& name, const Tensor& t, int64_t layers, const std::string& model);

}  // namespace baton
