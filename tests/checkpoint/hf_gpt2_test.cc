#include "checkpoint/hf_gpt2.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "runtime/atomic_file.h"
#include "tests/checkpoint/hf_test_helpers.h"
#include "tests/test_models.h"

namespace baton {
namespace {

using namespace baton::testing;  // NOLINT: shared test helpers

using json = nlohmann::json;

// 2 layers, hidden 8, 2 heads, ffn 24 (not 4h, so n_inner is exercised), vocab 50 padded to 64, 16 positions.
ModelSpec Tiny() { return testing::TinyGpt(2, 8, 2, 24, 50, 64, 16); }

// The parameter HF stores without baton's padding rows (ExpectImportedEqual).
const std::set<std::string> kPadded = {"wte"};

// hf is baton's [out, in] matrix stored as [in, out].
void ExpectTransposeOf(const Tensor& hf, const Tensor& baton, const std::string& what) {
  ASSERT_EQ(hf.shape(), Shape({baton.dim(1), baton.dim(0)})) << what;
  for (int64_t i = 0; i < hf.dim(0); ++i)
    for (int64_t j = 0; j < hf.dim(1); ++j)
      ASSERT_EQ(At(hf, i, j), At(baton, j, i)) << what << " [" << i << "][" << j << "]";
}

TEST(HfGpt2, ExportMapsEveryParameterWithHfNamesShapesAndLayout) {
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 11);
  ASSERT_EQ(baton.size(), 2u + 12 * 2 + 2) << "a built tiny GPT-2 has wte, wpe, 12 per block, ln_f";
  Result<NamedTensors> hf = ToHfGpt2(spec, baton);
  ASSERT_TRUE(hf.ok()) << hf.status().ToString();

  std::set<std::string> names;
  for (const auto& [n, t] : *hf) names.insert(n);
  std::set<std::string> expected = {"transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight",
                                    "transformer.ln_f.bias"};
  for (const std::string i : {"0", "1"}) {
    for (const char* s : {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                          "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                          "mlp.c_proj.weight", "mlp.c_proj.bias"}) {
      expected.insert("transformer.h." + i + "." + s);
    }
  }
  EXPECT_EQ(names, expected) << "no lm_head.weight: tied heads are omitted, as save_pretrained does";

  const Tensor& wte = Find(*hf, "transformer.wte.weight");
  ASSERT_EQ(wte.shape(), Shape({50, 8}));
  for (int64_t r = 0; r < 50; ++r)
    for (int64_t c = 0; c < 8; ++c) ASSERT_EQ(At(wte, r, c), At(baton.at("wte"), r, c));
  EXPECT_TRUE(SameBytes(Find(*hf, "transformer.wpe.weight"), baton.at("wpe")));
  for (const std::string i : {"0", "1"}) {
    const std::string h = "transformer.h." + i + ".", b = "blocks." + i + ".";
    ExpectTransposeOf(Find(*hf, h + "attn.c_attn.weight"), baton.at(b + "attn.qkv.weight"), h + "c_attn");
    ExpectTransposeOf(Find(*hf, h + "attn.c_proj.weight"), baton.at(b + "attn.proj.weight"), h + "attn.c_proj");
    ExpectTransposeOf(Find(*hf, h + "mlp.c_fc.weight"), baton.at(b + "mlp.fc.weight"), h + "c_fc");
    ExpectTransposeOf(Find(*hf, h + "mlp.c_proj.weight"), baton.at(b + "mlp.proj.weight"), h + "mlp.c_proj");
    EXPECT_EQ(Find(*hf, h + "mlp.c_fc.weight").shape(), Shape({8, 24}));
    EXPECT_TRUE(SameBytes(Find(*hf, h + "attn.c_attn.bias"), baton.at(b + "attn.qkv.bias")));
    EXPECT_TRUE(SameBytes(Find(*hf, h + "attn.c_proj.bias"), baton.at(b + "attn.proj.bias")));
    EXPECT_TRUE(SameBytes(Find(*hf, h + "mlp.c_fc.bias"), baton.at(b + "mlp.fc.bias")));
    EXPECT_TRUE(SameBytes(Find(*hf, h + "mlp.c_proj.bias"), baton.at(b + "mlp.proj.bias")));
    EXPECT_TRUE(SameBytes(Find(*hf, h + "ln_1.weight"), baton.at(b + "ln1.weight")));
    EXPECT_TRUE(SameBytes(Find(*hf, h + "ln_1.bias"), baton.at(b + "ln1.bias")));
    EXPECT_TRUE(SameBytes(Find(*hf, h + "ln_2.weight"), baton.at(b + "ln2.weight")));
    EXPECT_TRUE(SameBytes(Find(*hf, h + "ln_2.bias"), baton.at(b + "ln2.bias")));
  }
  EXPECT_TRUE(SameBytes(Find(*hf, "transformer.ln_f.weight"), baton.at("ln_f.weight")));
  EXPECT_TRUE(SameBytes(Find(*hf, "transformer.ln_f.bias"), baton.at("ln_f.bias")));
}

TEST(HfGpt2, ImportGivesBackTheExportedParametersBitwise) {
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 12);
  Result<NamedTensors> hf = ToHfGpt2(spec, baton);
  ASSERT_TRUE(hf.ok()) << hf.status().ToString();
  Result<ParamTensors> back = FromHfGpt2(spec, *hf);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectImportedEqual(*back, baton, spec.vocab, kPadded);
}

TEST(HfGpt2, ImportAcceptsUnprefixedNamesMaskBuffersAndATiedLmHead) {
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 13);
  NamedTensors hf = ToHfGpt2(spec, baton).value();
  NamedTensors bare;  // GPT2Model style, as the Hub's original "gpt2" files
  for (const auto& [n, t] : hf) bare.emplace_back(n.substr(std::strlen("transformer.")), t);
  bare.emplace_back("h.0.attn.bias", Tensor::Zeros({1, 1, 16, 16}, DType::kF32));
  bare.emplace_back("h.1.attn.masked_bias", Tensor::Zeros({}, DType::kF32));
  bare.emplace_back("lm_head.weight", Find(hf, "transformer.wte.weight").Clone());
  Result<ParamTensors> back = FromHfGpt2(spec, bare);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectImportedEqual(*back, baton, spec.vocab, kPadded);

  // An untied head is refused by name.
  Tensor untied = Find(hf, "transformer.wte.weight").Clone();
  untied.data<float>()[17] += 1.0f;
  bare.back().second = untied;
  Result<ParamTensors> refused = FromHfGpt2(spec, bare);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(Contains(refused.status().message(), "lm_head.weight"));
  EXPECT_TRUE(Contains(refused.status().message(), "untied"));
}

TEST(HfGpt2, ImportRefusesMissingMisshapenUnknownAndDuplicateTensorsByName) {
  const ModelSpec spec = Tiny();
  const NamedTensors hf = ToHfGpt2(spec, RandomParams(spec, 14)).value();
  const auto refused = [&](const NamedTensors& tensors, const std::string& text) {
    ExpectRefused(FromHfGpt2(spec, tensors).status(), text);
  };
  refused(Without(hf, "transformer.h.1.mlp.c_fc.bias"), "tensor transformer.h.1.mlp.c_fc.bias [24] is missing");
  // c_attn in baton's [3h, h] layout
  refused(Replaced(hf, "transformer.h.0.attn.c_attn.weight", Tensor::Zeros({24, 8}, DType::kF32)),
          "tensor transformer.h.0.attn.c_attn.weight is f32[24, 8] on cpu, expected f32[8, 24]");
  // a table with padding rows is not GPT-2's [vocab, h]
  refused(Replaced(hf, "transformer.wte.weight", Tensor::Zeros({64, 8}, DType::kF32)),
          "transformer.wte.weight is f32[64, 8]");

  NamedTensors extra_layer = hf;
  extra_layer.emplace_back("transformer.h.2.ln_1.weight", Tensor::Zeros({8}, DType::kF32));
  refused(extra_layer, "tensor transformer.h.2.ln_1.weight [8] is not a parameter of a 2-layer GPT-2");

  NamedTensors classifier = hf;
  classifier.emplace_back("score.weight", Tensor::Zeros({2, 8}, DType::kF32));
  refused(classifier, "tensor score.weight");

  NamedTensors twice = hf;
  twice.emplace_back("wpe.weight", Find(hf, "transformer.wpe.weight"));
  refused(twice, "transformer.wpe.weight and wpe.weight");
}

TEST(HfGpt2, ExportRefusesMissingMisshapenAndUnknownParametersAndRotaryModels) {
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 15);
  ParamTensors missing = baton;
  missing.erase("blocks.1.ln2.bias");
  EXPECT_TRUE(Contains(ToHfGpt2(spec, missing).status().message(), "parameter blocks.1.ln2.bias (f32 [8]) is missing"));
  ParamTensors wrong = baton;
  wrong["wte"] = Tensor::Zeros({50, 8}, DType::kF32);
  EXPECT_TRUE(
      Contains(ToHfGpt2(spec, wrong).status().message(), "parameter wte is f32[50, 8] on cpu, expected f32[64, 8]"));
  ParamTensors unknown = baton;
  unknown["blocks.0.attn.rope_freqs"] = Tensor::Zeros({4}, DType::kF32);
  EXPECT_TRUE(Contains(ToHfGpt2(spec, unknown).status().message(),
                       "parameter blocks.0.attn.rope_freqs has no GPT-2 counterpart"));
  ModelSpec rope = spec;
  rope.positions = PositionKind::kRope;
  EXPECT_TRUE(Contains(ToHfGpt2(rope, baton).status().message(), "rotary"));
  EXPECT_FALSE(HfGpt2ConfigJson(rope).ok());
}

TEST(HfGpt2, ConfigJsonHasTransformersFieldsAndRoundTrips) {
  ModelSpec spec = Tiny();
  spec.norm_eps = 3e-5;
  spec.init_std = 0.015;
  const std::string text = HfGpt2ConfigJson(spec).value();
  const json j = json::parse(text);
  EXPECT_EQ(j["model_type"], "gpt2");
  EXPECT_EQ(j["architectures"], json::array({"GPT2LMHeadModel"}));
  EXPECT_EQ(j["vocab_size"], 50);
  EXPECT_EQ(j["n_positions"], 16);
  EXPECT_EQ(j["n_embd"], 8);
  EXPECT_EQ(j["n_layer"], 2);
  EXPECT_EQ(j["n_head"], 2);
  EXPECT_EQ(j["n_inner"], 24);
  EXPECT_EQ(j["activation_function"], "gelu_new");
  EXPECT_EQ(j["layer_norm_epsilon"], 3e-5);
  EXPECT_EQ(j["initializer_range"], 0.015);
  EXPECT_EQ(j["resid_pdrop"], 0.0);
  EXPECT_EQ(j["embd_pdrop"], 0.0);
  EXPECT_EQ(j["attn_pdrop"], 0.0);
  EXPECT_EQ(j["tie_word_embeddings"], true);
  EXPECT_EQ(j["torch_dtype"], "float32");
  EXPECT_TRUE(j["bos_token_id"].is_null()) << "a 50-token vocabulary has no <|endoftext|> 50256";

  Result<ModelSpec> back = ModelSpecFromHfGpt2Config(text, 64, "out/config.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->family, "GPT2");
  EXPECT_EQ(back->layers, 2);
  EXPECT_EQ(back->hidden, 8);
  EXPECT_EQ(back->heads, 2);
  EXPECT_EQ(back->ffn, 24);
  EXPECT_EQ(back->vocab, 50);
  EXPECT_EQ(back->padded_vocab, 64);
  EXPECT_EQ(back->max_positions, 16);
  EXPECT_EQ(back->positions, PositionKind::kLearned);
  EXPECT_EQ(back->norm, NormKind::kLayerNorm);
  EXPECT_EQ(back->norm_eps, 3e-5);
  EXPECT_EQ(back->init_std, 0.015);

  spec.ffn = 32;  // 4h: transformers' default, written as null
  spec.vocab = 50257;
  spec.padded_vocab = 50304;
  const json j4 = json::parse(HfGpt2ConfigJson(spec).value());
  EXPECT_TRUE(j4["n_inner"].is_null());
  EXPECT_EQ(j4["bos_token_id"], 50256);
  EXPECT_EQ(j4["eos_token_id"], 50256);
  EXPECT_EQ(ModelSpecFromHfGpt2Config(j4.dump(), 1, "c").value().ffn, 32);
}

// The Hub's gpt2 config.json, as published (trimmed of task-specific params).
constexpr char kGpt2Config[] = R"({
  "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
  "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
  "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
  "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": null,
  "summary_first_dropout": 0.1, "summary_proj_to_labels": true, "summary_type": "cls_index",
  "summary_use_proj": true, "vocab_size": 50257})";

TEST(HfGpt2, ReadsTheHubGpt2Config) {
  Result<ModelSpec> s = ModelSpecFromHfGpt2Config(kGpt2Config, 128, "gpt2/config.json");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->layers, 12);
  EXPECT_EQ(s->hidden, 768);
  EXPECT_EQ(s->heads, 12);
  EXPECT_EQ(s->ffn, 3072);
  EXPECT_EQ(s->vocab, 50257);
  EXPECT_EQ(s->padded_vocab, 50304);
  EXPECT_EQ(s->max_positions, 1024);
  EXPECT_EQ(s->norm_eps, 1e-5);
}

TEST(HfGpt2, ConfigsBatonCannotRepresentAreRefusedNamingTheField) {
  const json base = json::parse(kGpt2Config);
  const auto refused = [&](const char* field, const json& value, const std::string& text) {
    const std::string config = WithField(base, field, value).dump();
    ExpectFieldRefused(ModelSpecFromHfGpt2Config(config, 128, "hub/config.json").status(), "hub/config.json", field,
                       text);
  };
  refused("activation_function", "gelu", "\"gelu\"");
  refused("activation_function", "relu", "tanh GELU");
  refused("scale_attn_by_inverse_layer_idx", true, "is true");
  refused("scale_attn_weights", false, "is false");
  refused("add_cross_attention", true, "is true");
  refused("tie_word_embeddings", false, "is false");
  refused("n_head", 7, "not divisible by field n_head 7");
  refused("n_layer", "12", "expected a positive integer");
  refused("n_embd", 0, "expected a positive integer");
  refused("vocab_size", kAbsent, "is missing");
  refused("model_type", "gpt_neo", "expected \"gpt2\"");
  refused("layer_norm_epsilon", "small", "expected a number");

  // Precision-only flags and pytorch's tanh GELU name describe the same function.
  json same = base;
  same["reorder_and_upcast_attn"] = true;
  same["activation_function"] = "gelu_pytorch_tanh";
  EXPECT_TRUE(ModelSpecFromHfGpt2Config(same.dump(), 128, "c").ok());
  EXPECT_FALSE(ModelSpecFromHfGpt2Config("{\"n_embd\": ", 128, "bad/config.json").ok());
  EXPECT_TRUE(Contains(ModelSpecFromHfGpt2Config("{\"n_embd\": ", 128, "bad/config.json").status().message(),
                       "bad/config.json: not valid JSON"));
}

TEST(HfGpt2, ExportThenImportDirectory) {
  ScratchDir dir;
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 16);
  const std::string out = dir / "hf";
  ASSERT_TRUE(ExportHfGpt2(out, spec, baton).ok());
  ExpectHfWeightsFile(out, 28);
  std::ifstream config(out + "/config.json");
  EXPECT_EQ(json::parse(config)["n_layer"], 2);

  Result<HfGpt2Checkpoint> back = ImportHfGpt2(out, 64);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->spec.padded_vocab, 64);
  EXPECT_EQ(back->spec.ffn, 24);
  ExpectImportedEqual(back->params, baton, spec.vocab, kPadded);

  const Status again = ExportHfGpt2(out, spec, baton);
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(Contains(again.message(), out + ": exists and is not empty"));
  std::filesystem::create_directories(dir / "empty");
  EXPECT_TRUE(ExportHfGpt2(dir / "empty", spec, baton).ok()) << "an existing empty directory is fine";
}

TEST(HfGpt2, ImportsShardedGpt2ModelDirectoryWithF16Weights) {
  ScratchDir dir;
  const ModelSpec spec = Tiny();
  ParamTensors baton = RandomParams(spec, 17);
  // Round baton's values to what an F16 file holds, and write them as F16 by hand.
  auto to_half = [](float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    const uint32_t exp = (b >> 23) & 0xff;
    if (exp < 113) return static_cast<uint16_t>((b >> 16) & 0x8000);  // |f| < 2^-14: flush to zero
    return static_cast<uint16_t>(((b >> 16) & 0x8000) | ((exp - 112) << 10) | ((b >> 13) & 0x3ff));
  };
  const NamedTensors hf = ToHfGpt2(spec, baton).value();
  const std::string hf_dir = dir / "gpt2";
  std::filesystem::create_directories(hf_dir);
  json weight_map;
  for (int shard = 0; shard < 2; ++shard) {
    std::string header = "{", buffer;
    for (size_t i = shard; i < hf.size(); i += 2) {
      const std::string name = hf[i].first.substr(std::strlen("transformer."));  // GPT2Model names
      const Tensor& t = hf[i].second;
      header += (header.size() > 1 ? "," : "") + json(name).dump() +
                ":{\"dtype\":\"F16\",\"shape\":" + json(t.shape()).dump() + ",\"data_offsets\":[" +
                std::to_string(buffer.size()) + ",";
      for (int64_t k = 0; k < t.numel(); ++k) {
        const uint16_t h = to_half(t.data<float>()[k]);
        buffer.append(reinterpret_cast<const char*>(&h), 2);
      }
      header += std::to_string(buffer.size()) + "]}";
      weight_map[name] = "model-0000" + std::to_string(shard + 1) + "-of-00002.safetensors";
    }
    header += "}";
    uint64_t n = header.size();
    const std::string bytes = std::string(reinterpret_cast<const char*>(&n), 8) + header + buffer;
    ASSERT_TRUE(
        WriteFileAtomically(hf_dir + "/model-0000" + std::to_string(shard + 1) + "-of-00002.safetensors", bytes).ok());
  }
  ASSERT_TRUE(
      WriteFileAtomically(hf_dir + "/model.safetensors.index.json", json{{"weight_map", weight_map}}.dump()).ok());
  ASSERT_TRUE(WriteFileAtomically(hf_dir + "/config.json", HfGpt2ConfigJson(spec).value()).ok());

  Result<HfGpt2Checkpoint> back = ImportHfGpt2(hf_dir, 64);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  // Expected: each baton value truncated to F16 (exact as F32), transposes as before.
  const Tensor& qkv = back->params.at("blocks.1.attn.qkv.weight");
  const Tensor& c_attn = Find(hf, "transformer.h.1.attn.c_attn.weight");
  int nonzero = 0;
  for (int64_t i = 0; i < 24; ++i) {
    for (int64_t j = 0; j < 8; ++j) {
      // F16 keeps the top 10 mantissa bits; values below its normal range were flushed to zero.
      uint32_t bits;
      const float v = At(c_attn, j, i);
      std::memcpy(&bits, &v, 4);
      bits = ((bits >> 23) & 0xff) < 113 ? bits & 0x80000000u : bits & 0xFFFFE000u;
      float expected;
      std::memcpy(&expected, &bits, 4);
      ASSERT_EQ(At(qkv, i, j), expected) << i << "," << j;
      nonzero += expected != 0;
    }
  }
  EXPECT_GT(nonzero, 150);
}

TEST(HfGpt2, ImportNamesWhatIsMissing) {
  ScratchDir dir;
  Result<HfGpt2Checkpoint> none = ImportHfGpt2(dir / "nothing", 64);
  EXPECT_EQ(none.status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(none.status().message(), dir / "nothing/config.json"));
  const std::string hf_dir = dir / "config_only";
  std::filesystem::create_directories(hf_dir);
  ASSERT_TRUE(WriteFileAtomically(hf_dir + "/config.json", HfGpt2ConfigJson(Tiny()).value()).ok());
  Result<HfGpt2Checkpoint> no_weights = ImportHfGpt2(hf_dir, 64);
  EXPECT_TRUE(Contains(no_weights.status().message(), hf_dir + ": has neither model.safetensors"));
  // A weights file of another model: the message names the file and the first missing tensor.
  ModelSpec other = Tiny();
  other.layers = 1;
  ASSERT_TRUE(ExportHfGpt2(dir / "one_layer", other, RandomParams(other, 18)).ok());
  std::filesystem::copy_file(dir / "one_layer/model.safetensors", hf_dir + "/model.safetensors");
  Result<HfGpt2Checkpoint> mismatch = ImportHfGpt2(hf_dir, 64);
  EXPECT_TRUE(Contains(mismatch.status().message(), hf_dir + "/model.safetensors"));
  EXPECT_TRUE(Contains(mismatch.status().message(), "tensor transformer.h.1.ln_1.weight [8] is missing"));
}

}  // namespace
}  // namespace baton
