// Baton's RoFormer (model.family ROFORMER) <-> Hugging Face transformers'
// RoFormerForMaskedLM (config.json + model.safetensors).
//
// Name mapping (E = "roformer.embeddings.", L = "roformer.encoder.layer.{i}.",
// P = "cls.predictions."; both sides store linear weights [out, in]):
//   wte [padded_vocab, h]         <-> E word_embeddings.weight [vocab, h] (padding rows dropped / zero)
//   ln_emb.{weight,bias}          <-> E LayerNorm.{weight,bias}
//   blocks.{i}.attn.qkv.weight    <-> L attention.self.{query,key,value}.weight: rows [0,h), [h,2h), [2h,3h)
//   blocks.{i}.attn.qkv.bias      <-> L attention.self.{query,key,value}.bias:   the same split
//   blocks.{i}.attn.proj.*        <-> L attention.output.dense.*
//   blocks.{i}.ln1.*              <-> L attention.output.LayerNorm.*
//   blocks.{i}.mlp.fc.*           <-> L intermediate.dense.*
//   blocks.{i}.mlp.proj.*         <-> L output.dense.*
//   blocks.{i}.ln2.*              <-> L output.LayerNorm.*
//   head.dense.*                  <-> P transform.dense.*
//   head.ln.*                     <-> P transform.LayerNorm.*
//   head.bias [padded_vocab]      <-> P bias [vocab] (or its tied alias P decoder.bias)
// HF-only tensors:
//   E token_type_embeddings.weight [type_vocab_size, h]: added to every token
//     (type 0 when no token_type_ids are given). Exported as zeros; on import
//     row 0 must be zero (baton has no token types; other rows are unused).
//   roformer.encoder.embed_positions.weight [max_positions, h/heads]: the fixed
//     sin | cos table HF's RoPE reads. Exported as transformers computes it; on
//     import optional, and refused unless it is that table (base 10000).
//   P decoder.weight: the tied output matrix; omitted on export, as
//     save_pretrained does; on import accepted only when it equals wte.
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

// OK when transformers' RoFormer computes the same function as `spec`: the
// ROFORMER layout (post-LN blocks, embedding LayerNorm, MLM-transform head,
// biases), interleaved RoPE with base 10000 (HF hard-codes it), an even head
// size, positive sizes, vocab <= padded_vocab.
Status CheckHfRoformerRepresentable(const ModelSpec& spec);

// Baton parameters (host f32, every one of the model with its shape) to
// RoFormerForMaskedLM tensors. A missing, misshapen or unknown parameter is
// an error naming it.
Result<NamedTensors> ToHfRoformer(const ModelSpec& spec, const ParamTensors& params);

// RoFormerForMaskedLM tensors (f32 or f64) to baton parameters (f32; padding
// rows of wte and head.bias zero). Every parameter must be present with its
// shape; see the header comment for the HF-only tensors; anything else is an
// error naming it. `type_vocab_size` is the config's.
Result<ParamTensors> FromHfRoformer(const ModelSpec& spec, const NamedTensors& hf, int64_t type_vocab_size = 2);

// config.json for RoFormerForMaskedLM: gelu_new, embedding_size = hidden_size,
// no dropout, rotary_value false, tied embeddings, type_vocab_size 2, float32.
Result<std::string> HfRoformerConfigJson(const ModelSpec& spec);

struct HfRoformerConfig {
  ModelSpec spec;
  int64_t type_vocab_size = 2;
};

// A ModelSpec (family ROFORMER) from a transformers RoFormer config.json;
// padded_vocab is vocab_size rounded up to `vocab_multiple`. Absent optional
// fields take RoFormerConfig's defaults. Configs baton cannot compute the
// same function for are refused naming the field: hidden_act other than
// gelu_new / gelu_pytorch_tanh (the default "gelu" is the erf GELU),
// rotary_value true, embedding_size != hidden_size (embeddings_project),
// is_decoder / add_cross_attention true, tie_word_embeddings false, an odd
// or fractional head size. Messages start with `source`.
Result<HfRoformerConfig> ModelSpecFromHfRoformerConfig(const std::string& json_text, int64_t vocab_multiple,
                                                       const std::string& source);

// Writes out_dir/config.json and out_dir/model.safetensors; an existing
// non-empty out_dir is refused. Everything is checked before out_dir is touched.
Status ExportHfRoformer(const std::string& out_dir, const ModelSpec& spec, const ParamTensors& params);

struct HfRoformerCheckpoint {
  ModelSpec spec;
  ParamTensors params;
};

// Reads hf_dir/config.json and hf_dir/model.safetensors (or its shards).
Result<HfRoformerCheckpoint> ImportHfRoformer(const std::string& hf_dir, int64_t vocab_multiple);

}  // namespace baton
