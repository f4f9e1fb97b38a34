// `baton export --format hf` and `baton import --format hf` end to end: a
// trained checkpoint goes out as a Hugging Face GPT-2 directory and comes back
// as the same function (the validation loss of the imported weights is the
// trained model's, bitwise), and training continues from it. The tensor layout
// itself is checked against transformers' conventions in tests/checkpoint/hf_gpt2_test.cc.
#include <cstring>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/safetensors.h"
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

}  // namespace
