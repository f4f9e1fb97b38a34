#include "checkpoint/hf_roformer.h"

#include <cmath>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/hf_config_fields.h"
#include "checkpoint/hf_model_dir.h"

namespace baton {
namespace {

using json = nlohmann::json;

constexpr char kEmb[] = "roformer.embeddings.";
constexpr char kWordEmbeddings[] = "roformer.embeddings.word_embeddings.weight";
constexpr char kTokenTypes[] = "roformer.embeddings.token_type_embeddings.weight";
constexpr char kPositionTable[] = "roformer.encoder.embed_positions.weight";
constexpr char kPredictionBias[] = "cls.predictions.bias";
constexpr char kDecoderBias[] = "cls.predictions.decoder.bias";      // tied to kPredictionBias
constexpr char kDecoderWeight[] = "cls.predictions.decoder.weight";  // tied to kWordEmbeddings
constexpr double kHfRopeBase = 10000;  // RoFormerSinusoidalPositionalEmbedding hard-codes it
constexpr int64_t kTypeVocabSize = 2;  // RoFormerConfig's default
// A stored sinusoidal table may have been rounded (bf16: |error| <= 2^-9); another
// base or layout differs by O(1), so this tells the two apart.
constexpr double kPositionTableTolerance = 1.0 / 256;

// Rows [begin, end) of baton parameter `baton` (full shape `shape`) are HF tensor `hf`.
// Most mappings are the whole tensor; wte and head.bias drop the padding rows,
// and qkv is split into query, key and value.
struct Mapping {
  std::string baton, hf;
  Shape shape;
  int64_t begin = 0, end = 0;
};

Shape HfShape(const Mapping& m) {
  Shape s = m.shape;
  s[0] = m.end - m.begin;
  return s;
}

std::vector<Mapping> RoformerMappings(const ModelSpec& s) {
  const int64_t h = s.hidden, f = s.ffn;
  std::vector<Mapping> m;
  const auto whole = [&](const std::string& baton, const std::string& hf, Shape shape) {
    m.push_back({baton, hf, shape, 0, shape[0]});
  };
  m.push_back({"wte", kWordEmbeddings, {s.padded_vocab, h}, 0, s.vocab});
  whole("ln_emb.weight", std::string(kEmb) + "LayerNorm.weight", {h});
  whole("ln_emb.bias", std::string(kEmb) + "LayerNorm.bias", {h});
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    const std::string l = "roformer.encoder.layer." + std::to_string(i) + ".";
    const char* parts[] = {"query", "key", "value"};
    for (int64_t j = 0; j < 3; ++j) {
      const std::string self = l + "attention.self." + parts[j];
      m.push_back({b + "attn.qkv.weight", self + ".weight", {3 * h, h}, j * h, (j + 1) * h});
      m.push_back({b + "attn.qkv.bias", self + ".bias", {3 * h}, j * h, (j + 1) * h});
    }
    whole(b + "attn.proj.weight", l + "attention.output.dense.weight", {h, h});
    whole(b + "attn.proj.bias", l + "attention.output.dense.bias", {h});
    whole(b + "ln1.weight", l + "attention.output.LayerNorm.weight", {h});
    whole(b + "ln1.bias", l + "attention.output.LayerNorm.bias", {h});
    whole(b + "mlp.fc.weight", l + "intermediate.dense.weight", {f, h});
    whole(b + "mlp.fc.bias", l + "intermediate.dense.bias", {f});
    whole(b + "mlp.proj.weight", l + "output.dense.weight", {h, f});
    whole(b + "mlp.proj.bias", l + "output.dense.bias", {h});
    whole(b + "ln2.weight", l + "output.LayerNorm.weight", {h});
    whole(b + "ln2.bias", l + "output.LayerNorm.bias", {h});
  }
  whole("head.dense.weight", "cls.predictions.transform.dense.weight", {h, h});
  whole("head.dense.bias", "cls.predictions.transform.dense.bias", {h});
  whole("head.ln.weight", "cls.predictions.transform.LayerNorm.weight", {h});
  whole("head.ln.bias", "cls.predictions.transform.LayerNorm.bias", {h});
  m.push_back({"head.bias", kPredictionBias, {s.padded_vocab}, 0, s.vocab});
  return m;
}

// transformers' RoFormerSinusoidalPositionalEmbedding.create_weight: row p is
// sin(p theta_i) for i < d/2, then cos(p theta_i), theta_i = 10000^(-2i/d),
// computed in double and rounded to f32 as it does.
Tensor SinusoidalTable(int64_t positions, int64_t d) {
  Tensor t = Tensor::Empty({positions, d}, DType::kF32);
  float* out = t.data<float>();
  for (int64_t p = 0; p < positions; ++p) {
    for (int64_t i = 0; i < d / 2; ++i) {
      const double angle = static_cast<double>(p) / std::pow(kHfRopeBase, 2.0 * static_cast<double>(i) / d);
      out[p * d + i] = static_cast<float>(std::sin(angle));
      out[p * d + d / 2 + i] = static_cast<float>(std::cos(angle));
    }
  }
  return t;
}

// The HF tensors by the name baton expects, to the name found in the file (for
// messages: the vocabulary bias has two) and the tensor.
struct Found {
  std::string name;
  const Tensor* tensor;
};
using HfByName = std::map<std::string, Found>;

// The HF-only tensors: token types, the RoPE table, the tied decoder.
Status CheckHfOnlyTensors(const ModelSpec& spec, int64_t type_vocab_size, HfByName* by_name) {
  const auto token_types = by_name->find(kTokenTypes);
  const Shape types_shape{type_vocab_size, spec.hidden};
  if (token_types == by_name->end())
    return Status::NotFound(std::string("tensor ") + kTokenTypes + " " + ShapeString(types_shape) + " is missing");
  BATON_RETURN_IF_ERROR(
      CheckHfTensor(kTokenTypes, *token_types->second.tensor, types_shape, "type_vocab_size x hidden"));
  for (const double v : token_types->second.tensor->Rows(0, 1).ToDoubles()) {
    if (v != 0) {
      return Status::Unimplemented(
          std::string("tensor ") + kTokenTypes + " has a non-zero row 0 (" + std::to_string(v) +
          "): transformers adds it to every token's embedding, and baton has no token-type embedding "
          "(rows other than 0 are fine: they are used only with token_type_ids)");
    }
  }
  by_name->erase(token_types);

  const auto table = by_name->find(kPositionTable);
  if (table != by_name->end()) {  // transformers recomputes it when absent
    const Shape shape{spec.max_positions, spec.head_dim()};
    const Tensor& t = *table->second.tensor;
    BATON_RETURN_IF_ERROR(CheckHfTensor(kPositionTable, t, shape, "max_position_embeddings x head size"));
    const std::vector<double> want = SinusoidalTable(shape[0], shape[1]).ToDoubles();
    const std::vector<double> have = t.ToDoubles();
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::fabs(have[i] - want[i]) > kPositionTableTolerance) {
        return Status::Unimplemented(
            std::string("tensor ") + kPositionTable + " [" + std::to_string(i / shape[1]) + "][" +
            std::to_string(i % shape[1]) + "] is " + std::to_string(have[i]) + ", not " + std::to_string(want[i]) +
            ": it is not transformers' sinusoidal table of base 10000, which baton's RoPE computes");
      }
    }
    by_name->erase(table);
  }

  const auto decoder = by_name->find(kDecoderWeight);
  if (decoder != by_name->end()) {
    BATON_RETURN_IF_ERROR(CheckTiedToWte(kDecoderWeight, *decoder->second.tensor, kWordEmbeddings,
                                         *by_name->at(kWordEmbeddings).tensor));
    by_name->erase(decoder);
  }
  return Status::OK();
}

}  // namespace

Status CheckHfRoformerRepresentable(const ModelSpec& s) {
  const std::string what = "model (" + s.family + ") cannot be written as transformers' RoFormer: ";
  if (s.block != BlockKind::kPostNorm || !s.embedding_norm || s.head != HeadKind::kMlmTransform || !s.biases) {
    return Status::InvalidArgument(what +
                                   "it is not the ROFORMER layout (post-LN blocks with biases, embedding "
                                   "LayerNorm, MLM head with dense, GELU, LayerNorm and a vocabulary bias)");
  }
  if (s.norm != NormKind::kLayerNorm) return Status::InvalidArgument(what + "it uses RMSNorm, not LayerNorm");
  if (s.positions != PositionKind::kRope) return Status::InvalidArgument(what + "it has learned positions, not RoPE");
  if (s.rope_style != ops::RopeStyle::kInterleaved)
    return Status::InvalidArgument(what + "its RoPE is half-split; transformers' RoFormer rotates interleaved pairs");
  if (s.rope_base != kHfRopeBase) {
    return Status::InvalidArgument(what + "rope_base is " + std::to_string(s.rope_base) +
                                   "; transformers' RoFormer hard-codes 10000");
  }
  BATON_RETURN_IF_ERROR(CheckHfSizes(s, what));
  if (s.hidden % s.heads != 0 || s.head_dim() % 2 != 0) {
    return Status::InvalidArgument(what + "hidden " + std::to_string(s.hidden) + " / heads " + std::to_string(s.heads) +
                                   " is not an even head size (RoPE rotates pairs)");
  }
  return Status::OK();
}

Result<NamedTensors> ToHfRoformer(const ModelSpec& spec, const ParamTensors& params) {
  BATON_RETURN_IF_ERROR(CheckHfRoformerRepresentable(spec));
  std::set<std::string> mapped;
  NamedTensors out;
  for (const Mapping& m : RoformerMappings(spec)) {
    mapped.insert(m.baton);
    BATON_ASSIGN_OR_RETURN(const Tensor* t, HfExportParam(params, m.baton, m.shape));
    out.emplace_back(m.hf, t->Rows(m.begin, m.end).Clone());
    if (m.baton == "ln_emb.bias") {  // the embeddings' HF-only tensors, in transformers' order
      out.emplace_back(kTokenTypes, Tensor::Zeros({kTypeVocabSize, spec.hidden}, DType::kF32));
      out.emplace_back(kPositionTable, SinusoidalTable(spec.max_positions, spec.head_dim()));
    }
  }
  BATON_RETURN_IF_ERROR(CheckAllParamsMapped(params, mapped, "RoFormer"));
  return out;
}

Result<ParamTensors> FromHfRoformer(const ModelSpec& spec, const NamedTensors& hf, int64_t type_vocab_size) {
  BATON_RETURN_IF_ERROR(CheckHfRoformerRepresentable(spec));
  HfByName by_name;
  for (const auto& [name, t] : hf) {
    if (!by_name.emplace(name, Found{name, &t}).second)
      return Status::InvalidArgument("tensor " + name + " appears twice");
  }
  // The vocabulary bias under either of its tied names (older files carry both).
  const auto bias = by_name.find(kPredictionBias), alias = by_name.find(kDecoderBias);
  if (alias != by_name.end()) {
    if (bias == by_name.end()) {
      by_name.emplace(kPredictionBias, alias->second);
    } else if (!SameBytes(*bias->second.tensor, *alias->second.tensor)) {
      return Status::Unimplemented(std::string("tensor ") + kDecoderBias + " differs from " + kPredictionBias +
                                   ": an untied decoder bias is not supported (baton has one vocabulary bias)");
    }
    by_name.erase(kDecoderBias);
  }

  ParamTensors out;
  for (const Mapping& m : RoformerMappings(spec)) {
    const Shape shape = HfShape(m);
    const auto it = by_name.find(m.hf);
    if (it == by_name.end()) {
      const std::string also =
          m.hf == kPredictionBias ? std::string(" (and so is its tied alias ") + kDecoderBias + ")" : "";
      return Status::NotFound("tensor " + m.hf + " " + ShapeString(shape) + " is missing" + also);
    }
    const auto& [name, tensor] = it->second;
    BATON_RETURN_IF_ERROR(CheckHfTensor(name, *tensor, shape, "baton parameter " + m.baton));
    auto [slot, fresh] = out.emplace(m.baton, Tensor());
    if (fresh) slot->second = Tensor::Zeros(m.shape, DType::kF32);  // padding rows stay zero
    slot->second.Rows(m.begin, m.end).CopyFrom(HfTensorToF32(*tensor));
    if (m.hf != kWordEmbeddings) by_name.erase(it);  // kept for the tied decoder's comparison
  }
  BATON_RETURN_IF_ERROR(CheckHfOnlyTensors(spec, type_vocab_size, &by_name));
  by_name.erase(kWordEmbeddings);
  if (!by_name.empty()) {
    const Found& extra = by_name.begin()->second;
    return NotAnHfParameter(extra.name, *extra.tensor, spec.layers, "RoFormerForMaskedLM");
  }
  return out;
}

Result<std::string> HfRoformerConfigJson(const ModelSpec& s) {
  BATON_RETURN_IF_ERROR(CheckHfRoformerRepresentable(s));
  const json config = {
      {"model_type", "roformer"},
      {"architectures", json::array({"RoFormerForMaskedLM"})},
      {"vocab_size", s.vocab},
      {"embedding_size", s.hidden},  // no embeddings_project
      {"hidden_size", s.hidden},
      {"num_hidden_layers", s.layers},
      {"num_attention_heads", s.heads},
      {"intermediate_size", s.ffn},
      {"hidden_act", "gelu_new"},  // baton's GELU is the tanh form; RoFormer's default "gelu" is erf
      {"hidden_dropout_prob", 0.0},
      {"attention_probs_dropout_prob", 0.0},
      {"max_position_embeddings", s.max_positions},
      {"type_vocab_size", kTypeVocabSize},
      {"initializer_range", s.init_std},
      {"layer_norm_eps", s.norm_eps},
      {"rotary_value", false},
      {"is_decoder", false},
      {"add_cross_attention", false},
      {"tie_word_embeddings", true},
      // baton has no padding embedding (padding keys are masked out), so no padding_idx.
      {"pad_token_id", nullptr},
      {"bos_token_id", nullptr},
      {"eos_token_id", nullptr},
      {"torch_dtype", "float32"},
  };
  return config.dump(2) + "\n";
}

Result<HfRoformerConfig> ModelSpecFromHfRoformerConfig(const std::string& json_text, int64_t vocab_multiple,
                                                       const std::string& source) {
  BATON_RETURN_IF_ERROR(HfConfigFields::CheckVocabMultiple(vocab_multiple, source));
  BATON_ASSIGN_OR_RETURN(const json j, HfConfigFields::Parse(json_text, source));
  const HfConfigFields f(j, source);

  BATON_ASSIGN_OR_RETURN(const std::string model_type, f.String("model_type", "roformer"));
  if (model_type != "roformer") return f.Bad("model_type", model_type, "\"roformer\"");
  BATON_ASSIGN_OR_RETURN(const std::string act, f.String("hidden_act", "gelu"));
  if (act == "gelu") {
    return Status::Unimplemented(source + ": field hidden_act is \"gelu\"" +
                                 (f.Has("hidden_act") ? "" : " (absent: RoFormerConfig's default)") +
                                 ", the exact erf GELU, which baton does not compute; baton's GELU is the tanh "
                                 "approximation (\"gelu_new\" or \"gelu_pytorch_tanh\")");
  }
  BATON_RETURN_IF_ERROR(f.RequireTanhGelu("hidden_act", act));
  BATON_RETURN_IF_ERROR(f.Require("rotary_value", false, "baton applies RoPE to queries and keys only"));
  BATON_RETURN_IF_ERROR(f.Require("is_decoder", false, "baton's RoFormer is a bidirectional encoder"));
  BATON_RETURN_IF_ERROR(f.Require("add_cross_attention", false, "baton's RoFormer has no cross-attention"));
  BATON_RETURN_IF_ERROR(f.Require("tie_word_embeddings", true, "baton's output matrix is tied to wte"));

  HfRoformerConfig c;
  ModelSpec& s = c.spec;
  s.family = "ROFORMER";
  s.positions = PositionKind::kRope;
  s.rope_style = ops::RopeStyle::kInterleaved;
  s.rope_base = kHfRopeBase;
  s.norm = NormKind::kLayerNorm;
  s.biases = true;
  s.block = BlockKind::kPostNorm;
  s.embedding_norm = true;
  s.head = HeadKind::kMlmTransform;
  BATON_ASSIGN_OR_RETURN(s.vocab, f.PositiveInt("vocab_size"));
  BATON_ASSIGN_OR_RETURN(s.hidden, f.PositiveInt("hidden_size"));
  BATON_ASSIGN_OR_RETURN(s.layers, f.PositiveInt("num_hidden_layers"));
  BATON_ASSIGN_OR_RETURN(s.heads, f.PositiveInt("num_attention_heads"));
  BATON_ASSIGN_OR_RETURN(s.ffn, f.PositiveInt("intermediate_size"));
  BATON_ASSIGN_OR_RETURN(s.max_positions, f.PositiveInt("max_position_embeddings"));
  BATON_ASSIGN_OR_RETURN(const int64_t embedding_size, f.PositiveInt("embedding_size", s.hidden));
  if (embedding_size != s.hidden) {
    return Status::Unimplemented(source + ": field embedding_size is " + std::to_string(embedding_size) +
                                 ", not hidden_size " + std::to_string(s.hidden) +
                                 ": transformers then adds embeddings_project, a layer baton's RoFormer does not have");
  }
  if (s.hidden % s.heads != 0 || (s.hidden / s.heads) % 2 != 0) {
    return Status::InvalidArgument(source + ": field hidden_size " + std::to_string(s.hidden) +
                                   " / field num_attention_heads " + std::to_string(s.heads) +
                                   " is not an even head size (RoPE rotates pairs)");
  }
  BATON_ASSIGN_OR_RETURN(c.type_vocab_size, f.PositiveInt("type_vocab_size", kTypeVocabSize));
  BATON_ASSIGN_OR_RETURN(s.norm_eps, f.Number("layer_norm_eps", 1e-12));
  BATON_ASSIGN_OR_RETURN(s.init_std, f.Number("initializer_range", 0.02));
  if (!(s.norm_eps > 0)) return f.Bad("layer_norm_eps", s.norm_eps, "a positive number");
  s.padded_vocab = HfConfigFields::PaddedVocab(s.vocab, vocab_multiple);
  return c;
}

Status ExportHfRoformer(const std::string& out_dir, const ModelSpec& spec, const ParamTensors& params) {
  BATON_ASSIGN_OR_RETURN(const std::string config, HfRoformerConfigJson(spec));
  BATON_ASSIGN_OR_RETURN(const NamedTensors tensors, ToHfRoformer(spec, params));
  return WriteHfModelDir(out_dir, config, tensors);
}

Result<HfRoformerCheckpoint> ImportHfRoformer(const std::string& hf_dir, int64_t vocab_multiple) {
  const std::string config_path = HfConfigPath(hf_dir);
  BATON_ASSIGN_OR_RETURN(const std::string text, ReadHfTextFile(config_path));
  BATON_ASSIGN_OR_RETURN(const HfRoformerConfig config,
                         ModelSpecFromHfRoformerConfig(text, vocab_multiple, config_path));
  const auto convert = [&](const NamedTensors& tensors) {
    return FromHfRoformer(config.spec, tensors, config.type_vocab_size);
  };
  BATON_ASSIGN_OR_RETURN(ParamTensors params, ReadHfParams(hf_dir, config_path, convert));
  return HfRoformerCheckpoint{config.spec, std::move(params)};
}

}  // namespace baton
