#include "checkpoint/hf_roformer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "layers/ops.h"
#include "runtime/rng.h"
#include "tests/checkpoint/hf_test_helpers.h"

namespace baton {
namespace {

using namespace baton::testing;  // NOLINT: shared test helpers

using json = nlohmann::json;

constexpr char kWords[] = "roformer.embeddings.word_embeddings.weight";
constexpr char kTypes[] = "roformer.embeddings.token_type_embeddings.weight";
constexpr char kTable[] = "roformer.encoder.embed_positions.weight";

// 2 layers, hidden 8, 2 heads of 4, ffn 24 (not 4h), vocab 50 padded to 64, 16
// positions: the ROFORMER layout, as launch/run_spec.cc builds it.
ModelSpec Tiny() {
  ModelSpec s;
  s.family = "ROFORMER";
  s.layers = 2;
  s.hidden = 8;
  s.heads = 2;
  s.ffn = 24;
  s.vocab = 50;
  s.padded_vocab = 64;
  s.max_positions = 16;
  s.positions = PositionKind::kRope;
  s.rope_style = ops::RopeStyle::kInterleaved;
  s.rope_base = 10000;
  s.norm = NormKind::kLayerNorm;
  s.biases = true;
  s.block = BlockKind::kPostNorm;
  s.embedding_norm = true;
  s.head = HeadKind::kMlmTransform;
  s.norm_eps = 1e-12;
  return s;
}

// The parameters HF stores without baton's padding rows (ExpectImportedEqual).
const std::set<std::string> kPadded = {"wte", "head.bias"};

TEST(HfRoformer, ExportWritesExactlyTransformersNamesAndShapes) {
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 11);
  ASSERT_EQ(baton.size(), 1u + 2 + 12 * 2 + 5) << "wte, ln_emb, 12 per block, head dense/ln/bias";
  Result<NamedTensors> hf = ToHfRoformer(spec, baton);
  ASSERT_TRUE(hf.ok()) << hf.status().ToString();

  // Written out from RoFormerForMaskedLM's modules (modeling_roformer.py).
  std::map<std::string, Shape> expected = {
      {kWords, {50, 8}},
      {kTypes, {2, 8}},
      {"roformer.embeddings.LayerNorm.weight", {8}},
      {"roformer.embeddings.LayerNorm.bias", {8}},
      {kTable, {16, 4}},
      {"cls.predictions.transform.dense.weight", {8, 8}},
      {"cls.predictions.transform.dense.bias", {8}},
      {"cls.predictions.transform.LayerNorm.weight", {8}},
      {"cls.predictions.transform.LayerNorm.bias", {8}},
      {"cls.predictions.bias", {50}},
  };
  for (const std::string i : {"0", "1"}) {
    const std::string l = "roformer.encoder.layer." + i + ".";
    for (const char* qkv : {"query", "key", "value"}) {
      expected[l + "attention.self." + qkv + ".weight"] = {8, 8};
      expected[l + "attention.self." + qkv + ".bias"] = {8};
    }
    expected[l + "attention.output.dense.weight"] = {8, 8};
    expected[l + "attention.output.dense.bias"] = {8};
    expected[l + "attention.output.LayerNorm.weight"] = {8};
    expected[l + "attention.output.LayerNorm.bias"] = {8};
    expected[l + "intermediate.dense.weight"] = {24, 8};
    expected[l + "intermediate.dense.bias"] = {24};
    expected[l + "output.dense.weight"] = {8, 24};
    expected[l + "output.dense.bias"] = {8};
    expected[l + "output.LayerNorm.weight"] = {8};
    expected[l + "output.LayerNorm.bias"] = {8};
  }
  std::map<std::string, Shape> got;
  for (const auto& [n, t] : *hf) {
    EXPECT_TRUE(got.emplace(n, t.shape()).second) << n << " twice";
    EXPECT_EQ(t.dtype(), DType::kF32) << n;
  }
  EXPECT_EQ(got, expected) << "no decoder weight or bias: tied, as save_pretrained omits them";
}

TEST(HfRoformer, ExportSplitsQkvIntoQueryKeyValueRowsAndCopiesTheRest) {
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 12);
  const NamedTensors hf = ToHfRoformer(spec, baton).value();
  const int64_t h = spec.hidden;
  for (const std::string i : {"0", "1"}) {
    const std::string l = "roformer.encoder.layer." + i + ".attention.", b = "blocks." + i + ".attn.";
    const Tensor& w = baton.at(b + "qkv.weight");  // [3h, h]: q rows, then k rows, then v rows
    const Tensor& bias = baton.at(b + "qkv.bias");
    const char* parts[] = {"query", "key", "value"};
    for (int64_t part = 0; part < 3; ++part) {
      const Tensor& hw = Find(hf, l + "self." + parts[part] + ".weight");
      const Tensor& hb = Find(hf, l + "self." + parts[part] + ".bias");
      for (int64_t r = 0; r < h; ++r) {
        ASSERT_EQ(At(hb, r), bias.data<float>()[part * h + r]) << parts[part] << " bias " << r;
        for (int64_t c = 0; c < h; ++c)
          ASSERT_EQ(At(hw, r, c), w.data<float>()[(part * h + r) * h + c])
              << parts[part] << " [" << r << "][" << c << "]";
      }
    }
    EXPECT_TRUE(SameBytes(Find(hf, l + "output.dense.weight"), baton.at(b + "proj.weight")));
    EXPECT_TRUE(SameBytes(Find(hf, l + "output.LayerNorm.bias"), baton.at("blocks." + i + ".ln1.bias")));
    const std::string o = "roformer.encoder.layer." + i + ".";
    EXPECT_TRUE(SameBytes(Find(hf, o + "intermediate.dense.weight"), baton.at("blocks." + i + ".mlp.fc.weight")));
    EXPECT_TRUE(SameBytes(Find(hf, o + "output.dense.bias"), baton.at("blocks." + i + ".mlp.proj.bias")));
    EXPECT_TRUE(SameBytes(Find(hf, o + "output.LayerNorm.weight"), baton.at("blocks." + i + ".ln2.weight")));
  }
  const Tensor& words = Find(hf, kWords);
  for (int64_t r = 0; r < 50; ++r)
    for (int64_t c = 0; c < 8; ++c) ASSERT_EQ(At(words, r, c), At(baton.at("wte"), r, c));
  const Tensor& vocab_bias = Find(hf, "cls.predictions.bias");
  for (int64_t r = 0; r < 50; ++r) ASSERT_EQ(At(vocab_bias, r), At(baton.at("head.bias"), r));
  EXPECT_TRUE(SameBytes(Find(hf, "cls.predictions.transform.dense.weight"), baton.at("head.dense.weight")));
  EXPECT_TRUE(SameBytes(Find(hf, "cls.predictions.transform.LayerNorm.weight"), baton.at("head.ln.weight")));
  EXPECT_TRUE(SameBytes(Find(hf, "roformer.embeddings.LayerNorm.bias"), baton.at("ln_emb.bias")));
  for (const double v : Find(hf, kTypes).ToDoubles()) ASSERT_EQ(v, 0.0) << "token types must add nothing";
}

// The exported table, used the way transformers' apply_rotary_position_embeddings
// uses it (sin | cos halves, each repeated for the pair; rotate_half(x) = [-x1, x0, -x3, x2, ...]),
// gives what baton's interleaved RoPE computes.
TEST(HfRoformer, ExportedPositionTableDrivesTransformersRotaryAsBatonsRope) {
  ModelSpec spec = Tiny();
  spec.hidden = 32;
  spec.heads = 2;  // head size 16
  spec.max_positions = 64;
  const NamedTensors hf = ToHfRoformer(spec, RandomParams(spec, 13)).value();
  const Tensor& table = Find(hf, kTable);
  const int64_t d = 16, seq = 64;
  ASSERT_EQ(table.shape(), Shape({seq, d}));
  for (int64_t p = 0; p < seq; ++p) {
    for (int64_t i = 0; i < d / 2; ++i) {  // theta_i = 10000^(-2i/d)
      const double angle = p * std::exp(-2.0 * i / d * std::log(10000.0));
      ASSERT_NEAR(At(table, p, i), std::sin(angle), 1e-6) << p << "," << i;
      ASSERT_NEAR(At(table, p, d / 2 + i), std::cos(angle), 1e-6) << p << "," << i;
    }
  }
  RandomStream rng(5, 1);
  Tensor x = Tensor::Empty({seq, d}, DType::kF32);  // one head, position = row
  for (int64_t k = 0; k < x.numel(); ++k) x.data<float>()[k] = static_cast<float>(rng.Normal());
  Tensor rotated = x.Clone();
  ops::Rope(&rotated, 0, d, seq, d, ops::RopeStyle::kInterleaved, 10000, false);
  for (int64_t p = 0; p < seq; ++p) {
    for (int64_t c = 0; c < d; ++c) {
      const double sin = At(table, p, c / 2), cos = At(table, p, d / 2 + c / 2);
      const double rotate_half = c % 2 == 0 ? -At(x, p, c + 1) : At(x, p, c - 1);
      ASSERT_NEAR(At(rotated, p, c), At(x, p, c) * cos + rotate_half * sin, 1e-5) << p << "," << c;
    }
  }
}

TEST(HfRoformer, ImportGivesBackTheExportedParametersBitwise) {
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 14);
  const NamedTensors hf = ToHfRoformer(spec, baton).value();
  Result<ParamTensors> back = FromHfRoformer(spec, hf);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectImportedEqual(*back, baton, spec.vocab, kPadded);
}

TEST(HfRoformer, ImportAcceptsTiedAliasesUnusedTokenTypesAndNoPositionTable) {
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 15);
  const NamedTensors hf = ToHfRoformer(spec, baton).value();
  // An older file: the decoder's tied copies present, the bias only under the decoder's name.
  NamedTensors older = Without(Without(hf, "cls.predictions.bias"), kTable);
  older.emplace_back("cls.predictions.decoder.weight", Find(hf, kWords).Clone());
  older.emplace_back("cls.predictions.decoder.bias", Find(hf, "cls.predictions.bias").Clone());
  Tensor types = Tensor::Zeros({3, 8}, DType::kF32);
  types.data<float>()[8 + 5] = 0.75f;  // row 1: used only with token_type_ids
  Result<ParamTensors> back = FromHfRoformer(spec, Replaced(older, kTypes, types), 3);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectImportedEqual(*back, baton, spec.vocab, kPadded);

  // Both bias names, equal.
  NamedTensors both = hf;
  both.emplace_back("cls.predictions.decoder.bias", Find(hf, "cls.predictions.bias").Clone());
  ASSERT_TRUE(FromHfRoformer(spec, both).ok());

  // A position table rounded to bf16 (8 significant bits) is still transformers' table.
  Tensor rounded = Find(hf, kTable).Clone();
  for (int64_t k = 0; k < rounded.numel(); ++k) {
    uint32_t bits;
    std::memcpy(&bits, &rounded.data<float>()[k], 4);
    bits &= 0xFFFF0000u;
    std::memcpy(&rounded.data<float>()[k], &bits, 4);
  }
  EXPECT_TRUE(FromHfRoformer(spec, Replaced(hf, kTable, rounded)).ok());
}

TEST(HfRoformer, ImportRefusesWhatBatonCannotComputeNamingTheTensor) {
  const ModelSpec spec = Tiny();
  const NamedTensors hf = ToHfRoformer(spec, RandomParams(spec, 16)).value();
  const auto refused = [&](const NamedTensors& tensors, const std::string& text, int64_t types = 2) {
    ExpectRefused(FromHfRoformer(spec, tensors, types).status(), text);
  };
  Tensor types = Tensor::Zeros({2, 8}, DType::kF32);
  types.data<float>()[3] = 0.5f;
  refused(Replaced(hf, kTypes, types), std::string("tensor ") + kTypes + " has a non-zero row 0 (0.5");

  Tensor untied = Find(hf, kWords).Clone();
  untied.data<float>()[7] += 1.0f;
  NamedTensors decoder = hf;
  decoder.emplace_back("cls.predictions.decoder.weight", untied);
  refused(decoder, "tensor cls.predictions.decoder.weight f32[50, 8] on cpu differs from " + std::string(kWords));

  Tensor other_bias = Find(hf, "cls.predictions.bias").Clone();
  other_bias.data<float>()[0] += 1.0f;
  NamedTensors biases = hf;
  biases.emplace_back("cls.predictions.decoder.bias", other_bias);
  refused(biases, "tensor cls.predictions.decoder.bias differs from cls.predictions.bias");

  // A table of base 20000 is another function: refused at the first entry that differs.
  Tensor table = Tensor::Empty({16, 4}, DType::kF32);
  for (int64_t p = 0; p < 16; ++p) {
    for (int64_t i = 0; i < 2; ++i) {
      table.data<float>()[p * 4 + i] = static_cast<float>(std::sin(p * std::pow(20000.0, -i / 2.0)));
      table.data<float>()[p * 4 + 2 + i] = static_cast<float>(std::cos(p * std::pow(20000.0, -i / 2.0)));
    }
  }
  refused(Replaced(hf, kTable, table), "it is not transformers' sinusoidal table of base 10000");
  refused(Replaced(hf, kTable, Tensor::Zeros({32, 4}, DType::kF32)),
          std::string("tensor ") + kTable + " is f32[32, 4] on cpu, expected f32[16, 4]");
}

TEST(HfRoformer, ImportRefusesMissingMisshapenUnknownAndDuplicateTensorsByName) {
  const ModelSpec spec = Tiny();
  const NamedTensors hf = ToHfRoformer(spec, RandomParams(spec, 17)).value();
  const auto refused = [&](const NamedTensors& tensors, const std::string& text, int64_t types = 2) {
    ExpectRefused(FromHfRoformer(spec, tensors, types).status(), text);
  };
  refused(Without(hf, "roformer.encoder.layer.1.attention.self.key.bias"),
          "tensor roformer.encoder.layer.1.attention.self.key.bias [8] is missing");
  refused(Without(hf, "cls.predictions.bias"), "tensor cls.predictions.bias [50] is missing");
  refused(Without(hf, kTypes), std::string("tensor ") + kTypes + " [2, 8] is missing");
  refused(hf, std::string("tensor ") + kTypes + " is f32[2, 8] on cpu, expected f32[3, 8]", 3);
  refused(Replaced(hf, "roformer.encoder.layer.0.intermediate.dense.weight", Tensor::Zeros({8, 24}, DType::kF32)),
          "tensor roformer.encoder.layer.0.intermediate.dense.weight is f32[8, 24] on cpu, expected f32[24, 8] "
          "(baton parameter blocks.0.mlp.fc.weight)");
  refused(Replaced(hf, kWords, Tensor::Zeros({64, 8}, DType::kF32)), std::string(kWords) + " is f32[64, 8]");
  NamedTensors extra_layer = hf;
  extra_layer.emplace_back("roformer.encoder.layer.2.output.dense.bias", Tensor::Zeros({8}, DType::kF32));
  refused(extra_layer,
          "tensor roformer.encoder.layer.2.output.dense.bias [8] is not a parameter of a 2-layer "
          "RoFormerForMaskedLM");
  NamedTensors project = hf;
  project.emplace_back("roformer.embeddings_project.weight", Tensor::Zeros({8, 8}, DType::kF32));
  refused(project, "tensor roformer.embeddings_project.weight");
  NamedTensors twice = hf;
  twice.push_back(hf.front());
  refused(twice, "tensor " + hf.front().first + " appears twice");
}

TEST(HfRoformer, ExportRefusesMissingMisshapenUnknownParametersAndOtherLayouts) {
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 18);
  ParamTensors missing = baton;
  missing.erase("head.ln.bias");
  EXPECT_TRUE(Contains(ToHfRoformer(spec, missing).status().message(), "parameter head.ln.bias (f32 [8]) is missing"));
  ParamTensors wrong = baton;
  wrong["blocks.1.attn.qkv.weight"] = Tensor::Zeros({8, 24}, DType::kF32);
  EXPECT_TRUE(Contains(ToHfRoformer(spec, wrong).status().message(),
                       "parameter blocks.1.attn.qkv.weight is f32[8, 24] on cpu, expected f32[24, 8]"));
  ParamTensors unknown = baton;
  unknown["wpe"] = Tensor::Zeros({16, 8}, DType::kF32);
  EXPECT_TRUE(Contains(ToHfRoformer(spec, unknown).status().message(), "parameter wpe has no RoFormer counterpart"));

  const auto not_representable = [&](ModelSpec s, const std::string& text) {
    const Status st = CheckHfRoformerRepresentable(s);
    EXPECT_FALSE(st.ok()) << text;
    EXPECT_TRUE(Contains(st.message(), text));
    EXPECT_FALSE(ToHfRoformer(s, baton).ok());
    EXPECT_FALSE(HfRoformerConfigJson(s).ok());
  };
  ModelSpec gpt2;  // the defaults are GPT-2's
  not_representable(gpt2, "not the ROFORMER layout");
  ModelSpec v2 = spec;  // ROFORMER_V2: no biases, parameter-free RMS norm, bare tied head
  v2.biases = false;
  v2.norm = NormKind::kRmsNormNoGain;
  v2.head = HeadKind::kTiedOnly;
  not_representable(v2, "not the ROFORMER layout");
  ModelSpec rms = spec;
  rms.norm = NormKind::kRmsNorm;
  not_representable(rms, "RMSNorm");
  ModelSpec half = spec;
  half.rope_style = ops::RopeStyle::kHalfSplit;
  not_representable(half, "half-split");
  ModelSpec base = spec;
  base.rope_base = 500000;
  not_representable(base, "hard-codes 10000");
  ModelSpec odd = spec;
  odd.hidden = 6;  // head size 3
  not_representable(odd, "not an even head size");
}

TEST(HfRoformer, ConfigJsonHasTransformersFieldsAndRoundTrips) {
  ModelSpec spec = Tiny();
  spec.init_std = 0.015;
  const std::string text = HfRoformerConfigJson(spec).value();
  const json j = json::parse(text);
  EXPECT_EQ(j["model_type"], "roformer");
  EXPECT_EQ(j["architectures"], json::array({"RoFormerForMaskedLM"}));
  EXPECT_EQ(j["vocab_size"], 50);
  EXPECT_EQ(j["embedding_size"], 8);
  EXPECT_EQ(j["hidden_size"], 8);
  EXPECT_EQ(j["num_hidden_layers"], 2);
  EXPECT_EQ(j["num_attention_heads"], 2);
  EXPECT_EQ(j["intermediate_size"], 24);
  EXPECT_EQ(j["hidden_act"], "gelu_new");
  EXPECT_EQ(j["hidden_dropout_prob"], 0.0);
  EXPECT_EQ(j["attention_probs_dropout_prob"], 0.0);
  EXPECT_EQ(j["max_position_embeddings"], 16);
  EXPECT_EQ(j["type_vocab_size"], 2);
  EXPECT_EQ(j["layer_norm_eps"], 1e-12);
  EXPECT_EQ(j["initializer_range"], 0.015);
  EXPECT_EQ(j["rotary_value"], false);
  EXPECT_EQ(j["is_decoder"], false);
  EXPECT_EQ(j["tie_word_embeddings"], true);
  EXPECT_EQ(j["torch_dtype"], "float32");

  Result<HfRoformerConfig> back = ModelSpecFromHfRoformerConfig(text, 64, "out/config.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const ModelSpec& s = back->spec;
  EXPECT_EQ(back->type_vocab_size, 2);
  EXPECT_EQ(s.family, "ROFORMER");
  EXPECT_EQ(s.layers, 2);
  EXPECT_EQ(s.hidden, 8);
  EXPECT_EQ(s.heads, 2);
  EXPECT_EQ(s.ffn, 24);
  EXPECT_EQ(s.vocab, 50);
  EXPECT_EQ(s.padded_vocab, 64);
  EXPECT_EQ(s.max_positions, 16);
  EXPECT_EQ(s.norm_eps, 1e-12);
  EXPECT_EQ(s.init_std, 0.015);
  EXPECT_TRUE(CheckHfRoformerRepresentable(s).ok()) << "an imported spec is the ROFORMER layout";
  EXPECT_EQ(s.rope_style, ops::RopeStyle::kInterleaved);
  EXPECT_EQ(s.rope_base, 10000);
}

// A RoFormerForMaskedLM config.json as save_pretrained writes it (fields equal to
// the base config's defaults omitted), with the tanh GELU.
constexpr char kRoformerConfig[] = R"({
  "architectures": ["RoFormerForMaskedLM"], "attention_probs_dropout_prob": 0.1, "embedding_size": 768,
  "hidden_act": "gelu_new", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
  "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 1536, "model_type": "roformer",
  "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "rotary_value": false,
  "transformers_version": "5.0.0", "type_vocab_size": 2, "use_cache": true, "vocab_size": 50000})";

TEST(HfRoformer, ConfigsBatonCannotComputeAreRefusedNamingTheField) {
  const json base = json::parse(kRoformerConfig);
  Result<HfRoformerConfig> ok = ModelSpecFromHfRoformerConfig(base.dump(), 128, "c");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->spec.padded_vocab, 50048);
  EXPECT_EQ(ok->spec.max_positions, 1536);
  const auto refused = [&](const char* field, const json& value, const std::string& text) {
    const std::string config = WithField(base, field, value).dump();
    ExpectFieldRefused(ModelSpecFromHfRoformerConfig(config, 128, "hub/config.json").status(), "hub/config.json",
                       field, text);
  };
  refused("hidden_act", "gelu", "the exact erf GELU, which baton does not compute");
  refused("hidden_act", kAbsent, "(absent: RoFormerConfig's default)");
  refused("hidden_act", "relu", "baton supports only the tanh GELU");
  refused("rotary_value", true, "is true");
  refused("is_decoder", true, "bidirectional");
  refused("add_cross_attention", true, "is true");
  refused("tie_word_embeddings", false, "is false");
  refused("embedding_size", 128, "embeddings_project");
  refused("num_attention_heads", 7, "is not an even head size");
  refused("num_attention_heads", 256, "is not an even head size");  // head size 3
  refused("vocab_size", kAbsent, "is missing");
  refused("intermediate_size", "3072", "expected a positive integer");
  refused("type_vocab_size", 0, "expected a positive integer");
  refused("model_type", "bert", "expected \"roformer\"");
  refused("layer_norm_eps", 0, "expected a positive number");

  json tanh = base;
  tanh["hidden_act"] = "gelu_pytorch_tanh";
  tanh.erase("embedding_size");  // absent: hidden_size
  tanh["type_vocab_size"] = 4;
  Result<HfRoformerConfig> t = ModelSpecFromHfRoformerConfig(tanh.dump(), 1, "c");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->type_vocab_size, 4);
  EXPECT_EQ(t->spec.padded_vocab, 50000);
  EXPECT_TRUE(Contains(ModelSpecFromHfRoformerConfig("[1]", 1, "bad/config.json").status().message(),
                       "bad/config.json: expected a JSON object"));
}

TEST(HfRoformer, ExportThenImportDirectory) {
  ScratchDir dir;
  const ModelSpec spec = Tiny();
  const ParamTensors baton = RandomParams(spec, 19);
  const std::string out = dir / "hf";
  ASSERT_TRUE(ExportHfRoformer(out, spec, baton).ok());
  ExpectHfWeightsFile(out, 42);

  Result<HfRoformerCheckpoint> back = ImportHfRoformer(out, 64);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->spec.family, "ROFORMER");
  EXPECT_EQ(back->spec.padded_vocab, 64);
  ExpectImportedEqual(back->params, baton, spec.vocab, kPadded);

  const Status again = ExportHfRoformer(out, spec, baton);
  EXPECT_TRUE(Contains(again.message(), out + ": exists and is not empty"));
  ModelSpec gpt2;
  EXPECT_FALSE(ExportHfRoformer(dir / "refused", gpt2, baton).ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "refused")) << "nothing is written for a refused model";

  // Weights of another model under this config: the message names the file and the tensor.
  ModelSpec one = spec;
  one.layers = 1;
  ASSERT_TRUE(ExportHfRoformer(dir / "one", one, RandomParams(one, 20)).ok());
  std::filesystem::copy_file(dir / "one/model.safetensors", out + "/model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  Result<HfRoformerCheckpoint> mismatch = ImportHfRoformer(out, 64);
  EXPECT_TRUE(Contains(mismatch.status().message(), out + "/model.safetensors"));
  EXPECT_TRUE(Contains(mismatch.status().message(),
                       "tensor roformer.encoder.layer.1.attention.self.query.weight [8, 8] is missing"));
}

}  // namespace
}  // namespace baton
