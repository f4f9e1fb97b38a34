// GPT-2 124M logits and loss against Hugging Face transformers'
// GPT2LMHeadModel with the same weights, loaded through baton's import path:
// tests/checkpoint/hf_reference.py builds a random model, saves it with
// save_pretrained and writes its fp32 logits; baton imports the directory and
// computes the same rows on the CPU (fp32) and on the GPU (bf16).
// Skipped, with the reason, where python3 with torch and transformers is missing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "checkpoint/hf_gpt2.h"
#include "layers/loss_head.h"
#include "layers/model.h"
#include "layers/ops.h"
#include "tests/checkpoint/hf_test_helpers.h"
#include "tests/gpu_test.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

using testing::ReadRaw;

struct Reference {
  fs::path dir;
  std::string skip;  // non-empty: why there is no reference
  int64_t batch = 2, seq = 1024;
  std::vector<int32_t> tokens, targets, rows;
  std::vector<float> logits;  // [rows, vocab]
  double loss = 0;
};

// Made once for the whole file: the model is 124M parameters.
const Reference& GetReference() {
  static const Reference ref = [] {
    Reference r;
    r.dir = fs::temp_directory_path() / ("baton_hf_parity_" + std::to_string(::getpid()));
    fs::create_directories(r.dir);
    const std::string cmd = "python3 " BATON_SOURCE_DIR "/tests/checkpoint/hf_reference.py --out " + r.dir.string() +
                            " > " + (r.dir / "reference.log").string() + " 2>&1";
    const int rc = std::system(cmd.c_str());
    if (rc != 0) {
      const std::string text = testing::ReadFileBytes(r.dir / "reference.log");
      r.skip = "the transformers reference could not run (" + text.substr(0, 300) + ")";
      return r;
    }
    r.tokens = ReadRaw<int32_t>(r.dir / "tokens.i32");
    r.targets = ReadRaw<int32_t>(r.dir / "targets.i32");
    r.rows = ReadRaw<int32_t>(r.dir / "positions.i32");
    r.logits = ReadRaw<float>(r.dir / "logits.f32");
    r.loss = ReadRaw<double>(r.dir / "loss.f64").at(0);
    return r;
  }();
  return ref;
}

struct BatonResult {
  std::vector<double> logits;  // [rows, vocab] at the reference's rows
  double loss = 0;
};

BatonResult RunBaton(const Reference& ref, Device device) {
  auto imported = ImportHfGpt2(ref.dir.string(), 128);
  EXPECT_TRUE(imported.ok()) << imported.status().ToString();
  const ModelSpec& spec = imported->spec;
  Model model = Model::Build(spec, 1, device.is_cpu() ? DType::kF32 : DType::kBF16, device);
  for (Param* p : model.params()) {
    auto it = imported->params.find(p->name);
    EXPECT_NE(it, imported->params.end()) << p->name;
    p->value.CopyFrom(it->second);
    p->RefreshCompute();
  }
  MicroBatch mb;
  mb.tokens = Tensor::FromVector<int32_t>({ref.batch, ref.seq}, ref.tokens).To(device);
  mb.targets = Tensor::FromVector<int32_t>({ref.batch, ref.seq}, ref.targets).To(device);
  Tensor x;
  const auto& layers = model.layers();
  for (size_t i = 0; i + 1 < layers.size(); ++i) x = layers[i]->Forward(mb, x, nullptr);
  auto* head = static_cast<LossHead*>(layers.back().get());
  BatonResult out;
  out.loss = head->Forward(mb, x, nullptr).ToDoubles()[0] / static_cast<double>(ref.batch * ref.seq);
  Tensor normed = head->final_norm()->Forward(x, nullptr);
  const std::vector<double> all_rows = normed.ToDoubles();
  // Logits of the kept rows only: gather them on the host, multiply on the device.
  const int64_t h = spec.hidden, n = static_cast<int64_t>(ref.rows.size());
  Tensor picked = Tensor::Empty({n, h}, DType::kF32);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < h; ++c) picked.data<float>()[i * h + c] = static_cast<float>(all_rows[ref.rows[i] * h + c]);
  Tensor rows = ops::Cast(picked.To(device), normed.dtype());
  Tensor logits = Tensor::Empty({n, spec.padded_vocab}, normed.dtype(), device);
  ops::Matmul(rows, false, head->token_table()->compute, true, &logits);
  const std::vector<double> l = logits.ToDoubles();
  for (int64_t i = 0; i < n; ++i)
    out.logits.insert(out.logits.end(), l.begin() + i * spec.padded_vocab, l.begin() + i * spec.padded_vocab + spec.vocab);
  return out;
}

// max |baton - hf| over the kept logits, relative to max |hf|.
double MaxRelativeLogitError(const BatonResult& r, const Reference& ref) {
  double err = 0, scale = 0;
  EXPECT_EQ(r.logits.size(), ref.logits.size());
  for (size_t i = 0; i < ref.logits.size() && i < r.logits.size(); ++i) {
    err = std::max(err, std::fabs(r.logits[i] - ref.logits[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(ref.logits[i])));
  }
  return err / scale;
}

TEST(HfLogitsParity, Fp32CpuMatchesTransformers) {
  const Reference& ref = GetReference();
  if (!ref.skip.empty()) GTEST_SKIP() << ref.skip;
  const BatonResult r = RunBaton(ref, Device::CPU());
  // Both in fp32; summation orders differ across 12 layers.
  EXPECT_LT(MaxRelativeLogitError(r, ref), 1e-4);
  EXPECT_NEAR(r.loss, ref.loss, 1e-5 * ref.loss);
}

TEST(HfLogitsParity, Bf16GpuMatchesTransformers) {
  BATON_REQUIRE_GPU();
  const Reference& ref = GetReference();
  if (!ref.skip.empty()) GTEST_SKIP() << ref.skip;
  const BatonResult r = RunBaton(ref, Device::CUDA(0));
  // bf16 activations and weights (8 significant bits) through 12 layers against fp32.
  EXPECT_LT(MaxRelativeLogitError(r, ref), 3e-2);
  EXPECT_NEAR(r.loss, ref.loss, 5e-3 * ref.loss);
}

}  // namespace
}  // namespace baton
