// Baton's GPT-2 parameters <-> Hugging Face transformers' GPT2LMHeadModel
// (config.json + model.safetensors), so that a model trained here can be
// loaded with GPT2LMHeadModel.from_pretrained and a Hub model trained further.
//
// Name mapping (HF names carry a "transformer." prefix in GPT2LMHeadModel
// files; GPT2Model files, e.g. the Hub's original "gpt2", have none):
//   wte [padded_vocab, h]          <-> wte.weight [vocab, h] (baton's padding rows dropped / zeroed)
//   wpe                            <-> wpe.weight
//   blocks.{i}.ln1.{weight,bias}   <-> h.{i}.ln_1.{weight,bias}
//   blocks.{i}.attn.qkv.weight     <-> h.{i}.attn.c_attn.weight  (transposed: HF's Conv1D stores [in, out])
//   blocks.{i}.attn.qkv.bias       <-> h.{i}.attn.c_attn.bias    (both q|k|v, heads contiguous)
//   blocks.{i}.attn.proj.weight    <-> h.{i}.attn.c_proj.weight  (transposed) and .bias
//   blocks.{i}.ln2.{weight,bias}   <-> h.{i}.ln_2.{weight,bias}
//   blocks.{i}.mlp.fc.weight       <-> h.{i}.mlp.c_fc.weight     (transposed) and .bias
//   blocks.{i}.mlp.proj.weight     <-> h.{i}.mlp.c_proj.weight   (transposed) and .bias
//   ln_f.{weight,bias}             <-> ln_f.{weight,bias}
// The LM head is tied to wte in both: export omits lm_head.weight (as
// save_pretrained does); import accepts it only when it equals wte.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "checkpoint/hf_model_dir.h"
#include "checkpoint/safetensors.h"
#include "layers/model_spec.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

// ParamTensors (parameters by baton name) is hf_model_dir.h's.

// OK when transformers' GPT-2 can hold `spec`: learned positions, LayerNorm,
// hidden divisible by heads, vocab <= padded_vocab, positive sizes.
Status CheckHfGpt2Representable(const ModelSpec& spec);

// Baton parameters (host f32; every one of the model, each with its shape)
// to GPT2LMHeadModel tensors ("transformer.wte.weight", ...; no lm_head).
// A missing, misshapen or unknown parameter is an error naming it.
Result<NamedTensors> ToHfGpt2(const ModelSpec& spec, const ParamTensors& params);

// GPT2LMHeadModel or GPT2Model tensors (f32 or f64) to baton parameters
// (f32; wte's padding rows zero). Every expected tensor must be present with
// its shape; the attention-mask buffers (h.{i}.attn.bias / .masked_bias) are
// ignored; any other extra tensor, or an lm_head.weight that differs from
// wte, is an error naming it.
Result<ParamTensors> FromHfGpt2(const ModelSpec& spec, const NamedTensors& hf);

// config.json for transformers (GPT2LMHeadModel, gelu_new, tied embeddings,
// dropout 0, float32).
Result<std::string> HfGpt2ConfigJson(const ModelSpec& spec);

// A ModelSpec (GPT2, learned positions, LayerNorm) from a transformers GPT-2
// config.json; padded_vocab is vocab_size rounded up to `vocab_multiple`.
// Configs baton cannot compute the same function for are refused, naming the
// field: activation_function other than gelu_new/gelu_pytorch_tanh,
// scale_attn_weights false, scale_attn_by_inverse_layer_idx true,
// add_cross_attention true, tie_word_embeddings false, n_embd % n_head != 0.
// Messages start with `source` (the file name).
Result<ModelSpec> ModelSpecFromHfGpt2Config(const std::string& json_text, int64_t vocab_multiple,
                                            const std::string& source);

// Writes out_dir/config.json and out_dir/model.safetensors (metadata
// {"format": "pt"}, which transformers requires). out_dir is created; an
// existing non-empty out_dir is refused rather than overwritten.
Status ExportHfGpt2(const std::string& out_dir, const ModelSpec& spec, const ParamTensors& params);

struct HfGpt2Checkpoint {
  ModelSpec spec;
  ParamTensors params;
};

// Reads hf_dir/config.json and hf_dir/model.safetensors (or the shards that
// hf_dir/model.safetensors.index.json lists). pytorch_model.bin is not read.
Result<HfGpt2Checkpoint> ImportHfGpt2(const std::string& hf_dir, int64_t vocab_multiple);

}  // namespace baton
