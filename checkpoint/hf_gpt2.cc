#include "checkpoint/hf_gpt2.h"

#include <cctype>
#include <cstring>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/hf_config_fields.h"

namespace baton {
namespace {

using json = nlohmann::json;

constexpr char kPrefix[] = "transformer.";
constexpr char kLmHead[] = "lm_head.weight";
constexpr int64_t kGpt2EndOfText = 50256;  // <|endoftext|> in GPT-2's vocabulary: its bos and eos

// One parameter: baton name and shape, HF name (without kPrefix), and whether
// HF stores it transposed (Conv1D keeps [in, out], baton's Linear [out, in]).
struct Mapping {
  std::string baton, hf;
  Shape shape;
  bool transposed = false;
};

std::vector<Mapping> Gpt2Mappings(const ModelSpec& s) {
  const int64_t h = s.hidden;
  std::vector<Mapping> m = {{"wte", "wte.weight", {s.padded_vocab, h}}, {"wpe", "wpe.weight", {s.max_positions, h}}};
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".", p = "h." + std::to_string(i) + ".";
    m.push_back({b + "ln1.weight", p + "ln_1.weight", {h}});
    m.push_back({b + "ln1.bias", p + "ln_1.bias", {h}});
    m.push_back({b + "attn.qkv.weight", p + "attn.c_attn.weight", {3 * h, h}, true});
    m.push_back({b + "attn.qkv.bias", p + "attn.c_attn.bias", {3 * h}});
    m.push_back({b + "attn.proj.weight", p + "attn.c_proj.weight", {h, h}, true});
    m.push_back({b + "attn.proj.bias", p + "attn.c_proj.bias", {h}});
    m.push_back({b + "ln2.weight", p + "ln_2.weight", {h}});
    m.push_back({b + "ln2.bias", p + "ln_2.bias", {h}});
    m.push_back({b + "mlp.fc.weight", p + "mlp.c_fc.weight", {s.ffn, h}, true});
    m.push_back({b + "mlp.fc.bias", p + "mlp.c_fc.bias", {s.ffn}});
    m.push_back({b + "mlp.proj.weight", p + "mlp.c_proj.weight", {h, s.ffn}, true});
    m.push_back({b + "mlp.proj.bias", p + "mlp.c_proj.bias", {h}});
  }
  m.push_back({"ln_f.weight", "ln_f.weight", {h}});
  m.push_back({"ln_f.bias", "ln_f.bias", {h}});
  return m;
}

// The shape HF stores a parameter with.
Shape HfShape(const ModelSpec& s, const Mapping& m) {
  if (m.baton == "wte") return {s.vocab, s.hidden};
  return m.transposed ? Shape{m.shape[1], m.shape[0]} : m.shape;
}

Tensor Transposed(const Tensor& t) {
  const int64_t rows = t.dim(0), cols = t.dim(1);
  Tensor out = Tensor::Empty({cols, rows}, DType::kF32);
  const float* src = t.data<float>();
  float* dst = out.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
  return out;
}

// GPT-2's attention-mask buffers, which older transformers versions saved: h.{i}.attn.bias / .masked_bias.
bool IsMaskBuffer(const std::string& name) {
  if (name.rfind("h.", 0) != 0) return false;
  size_t i = 2;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
  if (i == 2) return false;
  const std::string rest = name.substr(i);
  return rest == ".attn.bias" || rest == ".attn.masked_bias";
}

}  // namespace

Status CheckHfGpt2Representable(const ModelSpec& s) {
  const std::string what = "model (" + s.family + ") cannot be written as transformers' GPT-2: ";
  if (s.positions != PositionKind::kLearned) return Status::InvalidArgument(what + "it uses rotary positions");
  if (s.norm != NormKind::kLayerNorm) return Status::InvalidArgument(what + "it uses RMSNorm, not LayerNorm");
  BATON_RETURN_IF_ERROR(CheckHfSizes(s, what));
  if (s.hidden % s.heads != 0) {
    return Status::InvalidArgument(what + "hidden " + std::to_string(s.hidden) + " is not divisible by heads " +
                                   std::to_string(s.heads));
  }
  return Status::OK();
}

Result<NamedTensors> ToHfGpt2(const ModelSpec& spec, const ParamTensors& params) {
  BATON_RETURN_IF_ERROR(CheckHfGpt2Representable(spec));
  std::set<std::string> mapped;
  NamedTensors out;
  for (const Mapping& m : Gpt2Mappings(spec)) {
    mapped.insert(m.baton);
    BATON_ASSIGN_OR_RETURN(const Tensor* t, HfExportParam(params, m.baton, m.shape));
    Tensor hf = m.baton == "wte" ? t->Rows(0, spec.vocab).Clone() : m.transposed ? Transposed(*t) : t->Clone();
    out.emplace_back(kPrefix + m.hf, std::move(hf));
  }
  BATON_RETURN_IF_ERROR(CheckAllParamsMapped(params, mapped, "GPT-2"));
  return out;
}

Result<ParamTensors> FromHfGpt2(const ModelSpec& spec, const NamedTensors& hf) {
  BATON_RETURN_IF_ERROR(CheckHfGpt2Representable(spec));
  // Names without the "transformer." prefix, to the name as found (for messages) and the tensor.
  std::map<std::string, std::pair<std::string, const Tensor*>> by_name;
  const Tensor* lm_head = nullptr;
  bool prefixed = false;
  for (const auto& [name, t] : hf) {
    if (name == kLmHead) {
      lm_head = &t;
      continue;
    }
    const bool has_prefix = name.rfind(kPrefix, 0) == 0;
    prefixed |= has_prefix;
    const std::string bare = has_prefix ? name.substr(std::strlen(kPrefix)) : name;
    const auto [it, inserted] = by_name.emplace(bare, std::make_pair(name, &t));
    if (!inserted)
      return Status::InvalidArgument("tensors " + it->second.first + " and " + name + " are the same parameter");
  }

  ParamTensors out;
  std::pair<std::string, const Tensor*> hf_wte;  // the name found, for the tied head's message
  for (const Mapping& m : Gpt2Mappings(spec)) {
    const Shape shape = HfShape(spec, m);
    const auto it = by_name.find(m.hf);
    if (it == by_name.end()) {
      return Status::NotFound("tensor " + (prefixed ? kPrefix + m.hf : m.hf) + " " + ShapeString(shape) +
                              " is missing");
    }
    const auto& [name, tensor] = it->second;
    BATON_RETURN_IF_ERROR(CheckHfTensor(name, *tensor, shape, "baton parameter " + m.baton));
    Tensor t = HfTensorToF32(*tensor);
    if (m.baton == "wte") {
      hf_wte = it->second;
      Tensor table = Tensor::Zeros(m.shape, DType::kF32);
      table.Rows(0, spec.vocab).CopyFrom(t);
      t = table;
    } else {
      t = m.transposed ? Transposed(t) : t.Clone();
    }
    out.emplace(m.baton, std::move(t));
    by_name.erase(it);
  }
  for (const auto& [bare, found] : by_name) {
    if (!IsMaskBuffer(bare)) return NotAnHfParameter(found.first, *found.second, spec.layers, "GPT-2");
  }
  // Tied means the very same values: the bytes as stored.
  if (lm_head) BATON_RETURN_IF_ERROR(CheckTiedToWte(kLmHead, *lm_head, hf_wte.first, *hf_wte.second));
  return out;
}

Result<std::string> HfGpt2ConfigJson(const ModelSpec& s) {
  BATON_RETURN_IF_ERROR(CheckHfGpt2Representable(s));
  // bos/eos are GPT-2's <|endoftext|>, which only a vocabulary covering it has.
  const json eos = s.vocab > kGpt2EndOfText ? json(kGpt2EndOfText) : json(nullptr);
  const json config = {
      {"model_type", "gpt2"},
      {"architectures", json::array({"GPT2LMHeadModel"})},
      {"vocab_size", s.vocab},
      {"n_positions", s.max_positions},
      {"n_embd", s.hidden},
      {"n_layer", s.layers},
      {"n_head", s.heads},
      {"n_inner", s.ffn == 4 * s.hidden ? json(nullptr) : json(s.ffn)},
      {"activation_function", "gelu_new"},  // baton's GELU is the tanh form
      {"layer_norm_epsilon", s.norm_eps},
      {"initializer_range", s.init_std},
      {"resid_pdrop", 0.0},
      {"embd_pdrop", 0.0},
      {"attn_pdrop", 0.0},
      {"scale_attn_weights", true},
      {"scale_attn_by_inverse_layer_idx", false},
      {"reorder_and_upcast_attn", false},
      {"tie_word_embeddings", true},
      {"bos_token_id", eos},
      {"eos_token_id", eos},
      {"torch_dtype", "float32"},
  };
  return config.dump(2) + "\n";
}

Result<ModelSpec> ModelSpecFromHfGpt2Config(const std::string& json_text, int64_t vocab_multiple,
                                            const std::string& source) {
  BATON_RETURN_IF_ERROR(HfConfigFields::CheckVocabMultiple(vocab_multiple, source));
  BATON_ASSIGN_OR_RETURN(const json j, HfConfigFields::Parse(json_text, source));
  const HfConfigFields f(j, source);

  BATON_ASSIGN_OR_RETURN(const std::string model_type, f.String("model_type", "gpt2"));
  if (model_type != "gpt2") return f.Bad("model_type", model_type, "\"gpt2\"");
  BATON_ASSIGN_OR_RETURN(const std::string act, f.String("activation_function", "gelu_new"));
  BATON_RETURN_IF_ERROR(f.RequireTanhGelu("activation_function", act));
  BATON_RETURN_IF_ERROR(f.Require("scale_attn_weights", true, "baton scales attention scores by 1/sqrt(head_dim)"));
  BATON_RETURN_IF_ERROR(f.Require("scale_attn_by_inverse_layer_idx", false, "no per-layer attention scaling"));
  BATON_RETURN_IF_ERROR(f.Require("add_cross_attention", false, "baton models are decoder-only"));
  BATON_RETURN_IF_ERROR(f.Require("tie_word_embeddings", true, "baton's LM head is tied to wte"));
  // reorder_and_upcast_attn only changes the precision of the score computation
  // (fp32 under mixed precision), not the function; baton computes in fp32, so it is accepted.
  BATON_RETURN_IF_ERROR(f.Bool("reorder_and_upcast_attn", false).status());

  ModelSpec s;
  s.family = "GPT2";
  s.positions = PositionKind::kLearned;
  s.norm = NormKind::kLayerNorm;
  BATON_ASSIGN_OR_RETURN(s.vocab, f.PositiveInt("vocab_size"));
  BATON_ASSIGN_OR_RETURN(s.max_positions, f.PositiveInt("n_positions"));
  BATON_ASSIGN_OR_RETURN(s.hidden, f.PositiveInt("n_embd"));
  BATON_ASSIGN_OR_RETURN(s.layers, f.PositiveInt("n_layer"));
  BATON_ASSIGN_OR_RETURN(s.heads, f.PositiveInt("n_head"));
  if (s.hidden % s.heads != 0) {
    return Status::InvalidArgument(source + ": field n_embd " + std::to_string(s.hidden) +
                                   " is not divisible by field n_head " + std::to_string(s.heads));
  }
  BATON_ASSIGN_OR_RETURN(s.ffn, f.PositiveInt("n_inner", 4 * s.hidden));  // null: 4h
  BATON_ASSIGN_OR_RETURN(s.norm_eps, f.Number("layer_norm_epsilon", 1e-5));
  BATON_ASSIGN_OR_RETURN(s.init_std, f.Number("initializer_range", 0.02));
  if (!(s.norm_eps > 0)) return f.Bad("layer_norm_epsilon", s.norm_eps, "a positive number");
  s.padded_vocab = HfConfigFields::PaddedVocab(s.vocab, vocab_multiple);
  return s;
}

Status ExportHfGpt2(const std::string& out_dir, const ModelSpec& spec, const ParamTensors& params) {
  // Everything that can be refused is refused before the directory is touched.
  BATON_ASSIGN_OR_RETURN(const std::string config, HfGpt2ConfigJson(spec));
  BATON_ASSIGN_OR_RETURN(const NamedTensors tensors, ToHfGpt2(spec, params));
  return WriteHfModelDir(out_dir, config, tensors);
}

Result<HfGpt2Checkpoint> ImportHfGpt2(const std::string& hf_dir, int64_t vocab_multiple) {
  const std::string config_path = HfConfigPath(hf_dir);
  BATON_ASSIGN_OR_RETURN(const std::string text, ReadHfTextFile(config_path));
  HfGpt2Checkpoint ckpt;
  BATON_ASSIGN_OR_RETURN(ckpt.spec, ModelSpecFromHfGpt2Config(text, vocab_multiple, config_path));
  const auto convert = [&](const NamedTensors& tensors) { return FromHfGpt2(ckpt.spec, tensors); };
  BATON_ASSIGN_OR_RETURN(ckpt.params, ReadHfParams(hf_dir, config_path, convert));
  return ckpt;
}

}  // namespace baton
