// `baton export --format hf` and `baton import --format hf` end to end: a
// trained checkpoint goes out as a Hugging Face GPT-2 directory and comes back
// as the same function (the validation loss of the imported weights is the
// trained model's, bitwise), and training continues from it; a RoFormerForMaskedLM
// directory comes in and goes out again unchanged. The tensor layouts themselves are
// checked against transformers' conventions in tests/checkpoint/hf_{gpt2,roformer}_test.cc.
#include <cstring>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/hf_roformer.h"
#include "checkpoint/safetensors.h"
#include "layers/model.h"
#include "runtime/rng.h"
#include "tests/launch/run_fixture.h"

namespace {

using namespace baton::testing;  // NOLINT: the fixture and its helpers

using HfInterop = RunFixture;

std::string Bin() { return BATON_BINARY; }

TEST_F(HfInterop, ExportThenImportIsTheSameModelAndTrainsOn) {
  ASSERT_EQ(Train("small", "--set train.steps=6 --set train.eval_every=0").exit_code, 0);
  const fs::path out = dir_ / "hf";
  CommandResult e = Shell(Bin() + " export --format hf " + (dir_ / "small").string() + " " + out.string());
  ASSERT_EQ(e.exit_code, 0) << e.output;
  std::ifstream cfg(out / "config.json");
  const nlohmann::json config = nlohmann::json::parse(cfg);
  EXPECT_EQ(config["model_type"], "gpt2");
  EXPECT_EQ(config["n_embd"], 32);
  EXPECT_EQ(config["n_layer"], 2);
  EXPECT_EQ(config["vocab_size"], 512);

  // The exported Conv1D weight is the transpose of the checkpoint's [out, in] weight.
  auto ckpt = baton::CheckpointReader::Open((dir_ / "small/ckpt/step_00000006").string());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  auto hf = baton::ReadSafetensors((out / "model.safetensors").string());
  ASSERT_TRUE(hf.ok()) << hf.status().ToString();
  const baton::Tensor* c_attn = nullptr;
  for (const auto& [name, t] : *hf)
    if (name == "transformer.h.1.attn.c_attn.weight") c_attn = &t;
  ASSERT_NE(c_attn, nullptr);
  auto qkv = ckpt->Read("blocks.1.attn.qkv.weight");
  ASSERT_TRUE(qkv.ok());
  ASSERT_EQ(c_attn->shape(), (baton::Shape{32, 96}));
  for (int i = 0; i < 96; ++i)
    for (int j = 0; j < 32; ++j) ASSERT_EQ(c_attn->data<float>()[j * 96 + i], qkv->data<float>()[i * 32 + j]);

  CommandResult im = Shell(Bin() + " import --format hf " + out.string() + " --config " + config_.string() +
                           " --run-dir " + (dir_ / "imported").string());
  ASSERT_EQ(im.exit_code, 0) << im.output;
  auto back = baton::CheckpointReader::Open((dir_ / "imported/ckpt/step_00000000").string());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_FALSE(back->manifest().has_optimizer_state());
  int compared = 0;
  for (const auto& entry : back->manifest().tensors()) {
    auto a = ckpt->Read(entry.name()), b = back->Read(entry.name());
    ASSERT_TRUE(a.ok() && b.ok()) << entry.name();
    ASSERT_EQ(a->shape(), b->shape()) << entry.name();
    const int64_t real = entry.name() == "wte" ? 512 * 32 : a->numel();  // padding rows come back as zeros
    EXPECT_EQ(std::memcmp(a->raw(), b->raw(), static_cast<size_t>(real) * 4), 0) << entry.name();
    for (int64_t i = real; i < b->numel(); ++i) ASSERT_EQ(b->data<float>()[i], 0.0f) << entry.name();
    ++compared;
  }
  EXPECT_EQ(compared, 2 + 2 * 12 + 2);  // wte, wpe, 12 per block, ln_f

  // Same function: the imported weights' validation loss is the trained model's, and training goes on.
  CommandResult t = Train("imported", "--set train.steps=3 --resume auto");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  auto trained = Metrics("small"), continued = Metrics("imported");
  double trained_val = -1, imported_val = -2;
  for (auto& j : trained)
    if (j.contains("val_loss") && j["step"] == 6) trained_val = j["val_loss"];
  for (auto& j : continued)
    if (j.contains("val_loss") && j["step"] == 0) imported_val = j["val_loss"];
  EXPECT_EQ(trained_val, imported_val);
  EXPECT_EQ(LossLines("imported").back()["step"], 3);
}

TEST_F(HfInterop, RefusalsNameWhatIsWrong) {
  ASSERT_EQ(Train("small", "--set train.steps=2 --set train.eval_every=0").exit_code, 0);
  const std::string out = (dir_ / "hf").string();
  ASSERT_EQ(Shell(Bin() + " export --format hf " + (dir_ / "small").string() + " " + out).exit_code, 0);
  CommandResult again = Shell(Bin() + " export --format hf " + (dir_ / "small").string() + " " + out);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find(out), std::string::npos) << again.output;

  CommandResult other = Shell(Bin() + " import --format hf " + out + " --config " + config_.string() +
                              " --set model.hidden=64 --run-dir " + (dir_ / "x").string());
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.output.find("model.hidden: 32 there, 64 in this run's config"), std::string::npos) << other.output;
  EXPECT_FALSE(fs::exists(dir_ / "x/ckpt/step_00000000"));

  CommandResult into_run = Shell(Bin() + " import --format hf " + out + " --config " + config_.string() +
                                 " --run-dir " + (dir_ / "small").string());
  EXPECT_NE(into_run.exit_code, 0);
  EXPECT_NE(into_run.output.find("already holds checkpoints"), std::string::npos) << into_run.output;
}

// The fixture's model as a ROFORMER, with random values in every parameter, written
// as a RoFormerForMaskedLM directory.
void WriteRoformerDir(const fs::path& dir) {
  baton::ModelSpec s;
  s.family = "ROFORMER";
  s.layers = 2;
  s.hidden = 32;
  s.heads = 2;
  s.ffn = 128;
  s.vocab = s.padded_vocab = 512;
  s.max_positions = 32;
  s.positions = baton::PositionKind::kRope;
  s.rope_style = baton::ops::RopeStyle::kInterleaved;
  s.block = baton::BlockKind::kPostNorm;
  s.embedding_norm = true;
  s.head = baton::HeadKind::kMlmTransform;
  s.norm_eps = 1e-12;
  const baton::Model model = baton::Model::Build(s, 3);
  baton::ParamTensors params;
  baton::RandomStream rng(3, 1);
  for (baton::Param* p : model.params()) {
    baton::Tensor t = p->value.Clone();
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(rng.Normal());
    params.emplace(p->name, t);
  }
  const baton::Status st = baton::ExportHfRoformer(dir.string(), s, params);
  ASSERT_TRUE(st.ok()) << st.ToString();
}

TEST_F(HfInterop, RoformerComesInAndGoesOutUnchangedAndFamiliesWithoutAnArchitectureAreRefused) {
  const fs::path hf = dir_ / "roformer";
  ASSERT_NO_FATAL_FAILURE(WriteRoformerDir(hf));
  const std::string roformer =
      " --set model.family=ROFORMER --set model.ffn=128 --set model.norm_eps=1e-12"
      " --set objective.eot_token=50 --set objective.mask_token=51 --set objective.sep_token=52";
  CommandResult im = Shell(Bin() + " import --format hf " + hf.string() + " --config " + config_.string() + roformer +
                           " --run-dir " + (dir_ / "imported").string());
  ASSERT_EQ(im.exit_code, 0) << im.output;
  const fs::path out = dir_ / "out";
  CommandResult ex = Shell(Bin() + " export --format hf " + (dir_ / "imported").string() + " " + out.string());
  ASSERT_EQ(ex.exit_code, 0) << ex.output;
  auto a = baton::ReadSafetensors((hf / "model.safetensors").string());
  auto b = baton::ReadSafetensors((out / "model.safetensors").string());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    const auto& [name, t] = (*a)[i];
    ASSERT_EQ(name, (*b)[i].first);
    ASSERT_EQ(t.shape(), (*b)[i].second.shape()) << name;
    EXPECT_EQ(std::memcmp(t.raw(), (*b)[i].second.raw(), t.nbytes()), 0) << name;
  }
  std::ifstream c1(hf / "config.json"), c2(out / "config.json");
  EXPECT_EQ(nlohmann::json::parse(c1), nlohmann::json::parse(c2));

  // The config must describe the same model: here it still says GPT2.
  CommandResult gpt2 = Shell(Bin() + " import --format hf " + hf.string() + " --config " + config_.string() +
                             " --run-dir " + (dir_ / "x").string());
  EXPECT_NE(gpt2.exit_code, 0);
  EXPECT_NE(gpt2.output.find("model.family: ROFORMER there, GPT2 in this run's config"), std::string::npos)
      << gpt2.output;

  // GPT_ROPE trains, but transformers has no architecture to export it to.
  ASSERT_EQ(Train("rope", "--set model.family=GPT_ROPE --set train.steps=1 --set train.eval_every=0").exit_code, 0);
  CommandResult rope = Shell(Bin() + " export --format hf " + (dir_ / "rope").string() + " " + (dir_ / "y").string());
  EXPECT_NE(rope.exit_code, 0);
  EXPECT_NE(rope.output.find("is a GPT_ROPE model: transformers has no GPT-2 with rotary positions"), std::string::npos)
      << rope.output;
  EXPECT_FALSE(fs::exists(dir_ / "y"));
}

}  // namespace
