#include "checkpoint/hf_gpt2.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/atomic_file.h"

namespace baton {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

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

// Field readers for config.json: GPT2Config's default when absent, an error naming the field when mistyped.
class ConfigFields {
 public:
  ConfigFields(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  Result<int64_t> PositiveInt(const char* field) const {
    const auto it = j_.find(field);
    if (it == j_.end()) return Status::InvalidArgument(source_ + ": field " + field + " is missing");
    if (!it->is_number_integer() || it->get<int64_t>() <= 0) return Bad(field, *it, "a positive integer");
    return it->get<int64_t>();
  }
  Result<double> Number(const char* field, double fallback) const {
    const auto it = j_.find(field);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_number()) return Bad(field, *it, "a number");
    return it->get<double>();
  }
  Result<bool> Bool(const char* field, bool fallback) const {
    const auto it = j_.find(field);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) return Bad(field, *it, "true or false");
    return it->get<bool>();
  }
  Result<std::string> String(const char* field, const std::string& fallback) const {
    const auto it = j_.find(field);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_string()) return Bad(field, *it, "a string");
    return it->get<std::string>();
  }
  // A flag whose non-default value baton cannot compute.
  Status Require(const char* field, bool expected, const std::string& why) const {
    BATON_ASSIGN_OR_RETURN(const bool value, Bool(field, expected));
    if (value == expected) return Status::OK();
    return Status::Unimplemented(source_ + ": field " + field + " is " + (value ? "true" : "false") +
                                 ", baton supports only " + (expected ? "true" : "false") + " (" + why + ")");
  }
  Status Bad(const char* field, const json& value, const std::string& expected) const {
    return Status::InvalidArgument(source_ + ": field " + field + " is " + value.dump() + ", expected " + expected);
  }

 private:
  const json& j_;
  std::string source_;
};

Result<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return Status::IOError(path + ": read failed");
  return s.str();
}

// The tensors of hf_dir: model.safetensors, or every shard its index names.
// `source` is set to the file named in later messages about the tensors.
Result<NamedTensors> ReadHfWeights(const std::string& hf_dir, std::string* source) {
  const std::string single = (fs::path(hf_dir) / "model.safetensors").string();
  const std::string index = (fs::path(hf_dir) / "model.safetensors.index.json").string();
  std::error_code ec;
  *source = single;
  if (fs::exists(single, ec)) return ReadSafetensors(single);
  *source = index;
  if (!fs::exists(index, ec)) {
    return Status::NotFound(hf_dir + ": has neither model.safetensors nor model.safetensors.index.json " +
                            "(pytorch_model.bin is not read; save the model with safe_serialization=True)");
  }
  BATON_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(index));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    return Status::Corruption(index + ": expected a JSON object with a \"weight_map\" object");
  }
  std::set<std::string> shards;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos) {
      return Status::Corruption(index + ": weight_map entry " + name + " is not a file name in " + hf_dir);
    }
    shards.insert(file.get<std::string>());
  }
  NamedTensors all;
  for (const std::string& shard : shards) {
    BATON_ASSIGN_OR_RETURN(NamedTensors part, ReadSafetensors((fs::path(hf_dir) / shard).string()));
    for (auto& named : part) all.push_back(std::move(named));
  }
  return all;
}

}  // namespace

Status CheckHfGpt2Representable(const ModelSpec& s) {
  const std::string what = "model (" + s.family + ") cannot be written as transformers' GPT-2: ";
  if (s.positions != PositionKind::kLearned) return Status::InvalidArgument(what + "it uses rotary positions");
  if (s.norm != NormKind::kLayerNorm) return Status::InvalidArgument(what + "it uses RMSNorm, not LayerNorm");
  if (s.layers <= 0 || s.hidden <= 0 || s.heads <= 0 || s.ffn <= 0 || s.vocab <= 0 || s.max_positions <= 0) {
    return Status::InvalidArgument(what + "layers, hidden, heads, ffn, vocab and max_positions must be positive");
  }
  if (s.hidden % s.heads != 0) {
    return Status::InvalidArgument(what + "hidden " + std::to_string(s.hidden) + " is not divisible by heads " +
                                   std::to_string(s.heads));
  }
  if (s.padded_vocab < s.vocab) {
    return Status::InvalidArgument(what + "padded_vocab " + std::to_string(s.padded_vocab) + " < vocab " +
                                   std::to_string(s.vocab));
  }
  return Status::OK();
}

Result<NamedTensors> ToHfGpt2(const ModelSpec& spec, const ParamTensors& params) {
  BATON_RETURN_IF_ERROR(CheckHfGpt2Representable(spec));
  const std::vector<Mapping> mappings = Gpt2Mappings(spec);
  std::set<std::string> known;
  NamedTensors out;
  for (const Mapping& m : mappings) {
    known.insert(m.baton);
    const auto it = params.find(m.baton);
    if (it == params.end()) {
      return Status::NotFound("parameter " + m.baton + " (f32 " + ShapeString(m.shape) + ") is missing");
    }
    const Tensor& t = it->second;
    if (!t.defined() || t.dtype() != DType::kF32 || !t.device().is_cpu() || t.shape() != m.shape) {
      return Status::InvalidArgument("parameter " + m.baton + " is " + t.Describe() + ", expected f32" +
                                     ShapeString(m.shape) + " on cpu");
    }
    Tensor hf = m.baton == "wte" ? t.Rows(0, spec.vocab).Clone() : m.transposed ? Transposed(t) : t.Clone();
    out.emplace_back(kPrefix + m.hf, std::move(hf));
  }
  for (const auto& [name, t] : params) {
    if (!known.count(name)) return Status::InvalidArgument("parameter " + name + " has no GPT-2 counterpart");
  }
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
  const Tensor* hf_wte = nullptr;
  for (const Mapping& m : Gpt2Mappings(spec)) {
    const Shape shape = HfShape(spec, m);
    const auto it = by_name.find(m.hf);
    if (it == by_name.end()) {
      return Status::NotFound("tensor " + (prefixed ? kPrefix + m.hf : m.hf) + " " + ShapeString(shape) +
                              " is missing");
    }
    const auto& [name, tensor] = it->second;
    if (tensor->shape() != shape || (tensor->dtype() != DType::kF32 && tensor->dtype() != DType::kF64)) {
      return Status::InvalidArgument("tensor " + name + " is " + tensor->Describe() + ", expected f32" +
                                     ShapeString(shape) + " (baton parameter " + m.baton + ")");
    }
    if (m.baton == "wte") hf_wte = tensor;
    Tensor t = *tensor;
    if (t.dtype() == DType::kF64) {  // rounded to baton's f32
      const std::vector<double> d = t.ToDoubles();
      t = Tensor::FromVector(t.shape(), std::vector<float>(d.begin(), d.end()));
    }
    if (m.baton == "wte") {
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
    if (IsMaskBuffer(bare)) continue;
    return Status::InvalidArgument("tensor " + found.first + " " + ShapeString(found.second->shape()) +
                                   " is not a parameter of a " + std::to_string(spec.layers) +
                                   "-layer GPT-2 (or of baton's version of it)");
  }
  if (lm_head) {
    // Tied means the very same values: compare the bytes as stored.
    const bool same = lm_head->shape() == hf_wte->shape() && lm_head->dtype() == hf_wte->dtype() &&
                      std::memcmp(lm_head->raw(), hf_wte->raw(), hf_wte->nbytes()) == 0;
    if (!same) {
      return Status::Unimplemented(
          std::string("tensor ") + kLmHead + " " + lm_head->Describe() +
          " differs from wte.weight: untied LM heads are not supported (baton ties it to wte)");
    }
  }
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
  if (vocab_multiple <= 0) {
    return Status::InvalidArgument(source + ": vocab_multiple is " + std::to_string(vocab_multiple) +
                                   ", expected >= 1");
  }
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    return Status::InvalidArgument(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) return Status::InvalidArgument(source + ": expected a JSON object");
  const ConfigFields f(j, source);

  BATON_ASSIGN_OR_RETURN(const std::string model_type, f.String("model_type", "gpt2"));
  if (model_type != "gpt2") return f.Bad("model_type", model_type, "\"gpt2\"");
  BATON_ASSIGN_OR_RETURN(const std::string act, f.String("activation_function", "gelu_new"));
  if (act != "gelu_new" && act != "gelu_pytorch_tanh") {
    return Status::Unimplemented(source + ": field activation_function is \"" + act +
                                 "\", baton supports only the tanh GELU (\"gelu_new\" or \"gelu_pytorch_tanh\")");
  }
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
  s.ffn = 4 * s.hidden;
  if (j.contains("n_inner") && !j["n_inner"].is_null()) {
    BATON_ASSIGN_OR_RETURN(s.ffn, f.PositiveInt("n_inner"));
  }
  BATON_ASSIGN_OR_RETURN(s.norm_eps, f.Number("layer_norm_epsilon", 1e-5));
  BATON_ASSIGN_OR_RETURN(s.init_std, f.Number("initializer_range", 0.02));
  if (!(s.norm_eps > 0)) return f.Bad("layer_norm_epsilon", s.norm_eps, "a positive number");
  s.padded_vocab = (s.vocab + vocab_multiple - 1) / vocab_multiple * vocab_multiple;
  return s;
}

Status ExportHfGpt2(const std::string& out_dir, const ModelSpec& spec, const ParamTensors& params) {
  // Everything that can be refused is refused before the directory is touched.
  BATON_ASSIGN_OR_RETURN(const std::string config, HfGpt2ConfigJson(spec));
  BATON_ASSIGN_OR_RETURN(const NamedTensors tensors, ToHfGpt2(spec, params));
  std::error_code ec;
  if (fs::exists(out_dir, ec)) {
    if (!fs::is_directory(out_dir, ec)) return Status::InvalidArgument(out_dir + ": exists and is not a directory");
    if (!fs::is_empty(out_dir, ec)) {
      return Status::InvalidArgument(out_dir +
                                     ": exists and is not empty; refusing to overwrite (pick a new directory)");
    }
  }
  fs::create_directories(out_dir, ec);
  if (ec) return Status::IOError(out_dir + ": cannot create directory: " + ec.message());
  // Weights first, config last: a directory with a config.json is complete.
  BATON_RETURN_IF_ERROR(
      WriteSafetensors((fs::path(out_dir) / "model.safetensors").string(), tensors, {{"format", "pt"}}));
  return WriteFileAtomically((fs::path(out_dir) / "config.json").string(), config);
}

Result<HfGpt2Checkpoint> ImportHfGpt2(const std::string& hf_dir, int64_t vocab_multiple) {
  const std::string config_path = (fs::path(hf_dir) / "config.json").string();
  BATON_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(config_path));
  HfGpt2Checkpoint ckpt;
  BATON_ASSIGN_OR_RETURN(ckpt.spec, ModelSpecFromHfGpt2Config(text, vocab_multiple, config_path));
  std::string source;
  BATON_ASSIGN_OR_RETURN(const NamedTensors tensors, ReadHfWeights(hf_dir, &source));
  Result<ParamTensors> params = FromHfGpt2(ckpt.spec, tensors);
  if (!params.ok()) return params.status().WithContext(source + " (for " + config_path + ")");
  ckpt.params = std::move(params).value();
  return ckpt;
}

}  // namespace baton
