// RoFormer logits against Hugging Face transformers' RoFormerForMaskedLM with
// the same weights, in both directions:
//  - tests/checkpoint/hf_roformer_reference.py builds a random model, saves it
//    with save_pretrained and writes its fp32 logits for two sequences, the
//    second padded (attention_mask); baton imports the directory and computes
//    the same rows with a bidirectional mask of per-example lengths, on the CPU
//    (fp32) and on the GPU (bf16);
//  - baton exports what it imported, and the script loads that directory with
//    from_pretrained (nothing missing or unexpected, no warning) and gets the
//    reference logits back.
// Skipped, with the reason, where python3 with torch and transformers is missing.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "checkpoint/hf_roformer.h"
#include "layers/loss_head.h"
#include "layers/micro_batch.h"
#include "layers/model.h"
#include "layers/ops.h"
#include "tests/checkpoint/hf_test_helpers.h"
#include "tests/gpu_test.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kBatch = 2, kSeq = 128;  // the script's defaults

using testing::ReadFileBytes;
using testing::ReadRaw;

// Runs the script with `args`; "" when it succeeded, else its exit code and output.
// *skip is set when it exited 3 (torch or transformers missing).
std::string RunScript(const std::string& args, const fs::path& log, bool* skip) {
  const std::string cmd =
      "python3 " BATON_SOURCE_DIR "/tests/checkpoint/hf_roformer_reference.py " + args + " > " + log.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const int code = rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  *skip = code == 3;
  if (code == 0) return "";
  return "hf_roformer_reference.py " + args + " exited " + std::to_string(code) + ":\n" + ReadFileBytes(log);
}

fs::path ReferenceDir() { return fs::temp_directory_path() / ("baton_hf_roformer_" + std::to_string(::getpid())); }

// The reference directory (two 50k x 256 tables) goes when the tests are done.
class RemoveReferenceDir : public ::testing::Environment {
 public:
  void TearDown() override { fs::remove_all(ReferenceDir()); }
};
[[maybe_unused]] ::testing::Environment* const kRemoveReferenceDir =
    ::testing::AddGlobalTestEnvironment(new RemoveReferenceDir);

struct Reference {
  fs::path dir;
  std::string skip;   // non-empty: why there is no reference (no torch / transformers)
  std::string error;  // non-empty: the script failed for another reason
  std::vector<int32_t> tokens, lengths, rows;
  std::vector<float> logits;  // [rows, vocab]
};

// Made once for the whole file.
const Reference& GetReference() {
  static const Reference ref = [] {
    Reference r;
    r.dir = ReferenceDir();
    fs::remove_all(r.dir);
    fs::create_directories(r.dir / "hf");
    bool skip = false;
    const std::string failed = RunScript("--out " + (r.dir / "hf").string(), r.dir / "reference.log", &skip);
    if (!failed.empty()) {
      (skip ? r.skip : r.error) = failed.substr(0, 2000);
      return r;
    }
    r.tokens = ReadRaw<int32_t>(r.dir / "hf/tokens.i32");
    r.lengths = ReadRaw<int32_t>(r.dir / "hf/lengths.i32");
    r.rows = ReadRaw<int32_t>(r.dir / "hf/positions.i32");
    r.logits = ReadRaw<float>(r.dir / "hf/logits.f32");
    return r;
  }();
  return ref;
}

// Baton's logits at the reference's rows, [rows, vocab].
std::vector<double> BatonLogits(const Reference& ref, Device device) {
  auto imported = ImportHfRoformer((ref.dir / "hf").string(), 128);
  EXPECT_TRUE(imported.ok()) << imported.status().ToString();
  if (!imported.ok()) return {};
  const ModelSpec& spec = imported->spec;
  const DType dtype = device.is_cpu() ? DType::kF32 : DType::kBF16;
  Model model = Model::Build(spec, 1, dtype, device);
  for (Param* p : model.params()) {
    auto it = imported->params.find(p->name);
    if (it == imported->params.end()) {
      ADD_FAILURE() << "the import has no " << p->name;
      return {};
    }
    p->value.CopyFrom(it->second.To(p->value.device()));
    p->RefreshCompute();
  }
  EXPECT_EQ(model.params().size(), imported->params.size());

  MicroBatch mb;
  mb.tokens = Tensor::FromVector<int32_t>({kBatch, kSeq}, ref.tokens).To(device);
  mb.targets =
      Tensor::FromVector<int32_t>({kBatch, kSeq}, std::vector<int32_t>(kBatch * kSeq, kIgnoreTarget)).To(device);
  mb.mask.prefix = kSeq;  // bidirectional, padding keys excluded
  mb.mask.lengths = Tensor::FromVector<int32_t>({kBatch}, ref.lengths).To(device);
  Tensor x;
  const auto& layers = model.layers();
  for (size_t i = 0; i + 1 < layers.size(); ++i) x = layers[i]->Forward(mb, x, nullptr);
  const auto* head = static_cast<const LossHead*>(layers.back().get());

  // The head on the kept rows only: gather them on the host, compute on the device.
  const std::vector<double> all_rows = x.ToDoubles();
  const int64_t h = spec.hidden, n = static_cast<int64_t>(ref.rows.size());
  Tensor picked = Tensor::Empty({n, h}, DType::kF32);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < h; ++c) picked.data<float>()[i * h + c] = static_cast<float>(all_rows[ref.rows[i] * h + c]);
  const Tensor logits = head->Logits(ops::Cast(picked.To(device), x.dtype()));
  EXPECT_EQ(logits.shape(), Shape({n, spec.padded_vocab}));
  const std::vector<double> l = logits.ToDoubles();
  std::vector<double> out;
  for (int64_t i = 0; i < n; ++i)
    out.insert(out.end(), l.begin() + i * spec.padded_vocab, l.begin() + i * spec.padded_vocab + spec.vocab);
  return out;
}

// max |baton - hf| over the kept logits, relative to max |hf|.
double MaxRelativeLogitError(const std::vector<double>& baton, const Reference& ref) {
  double err = 0, scale = 0;
  EXPECT_EQ(baton.size(), ref.logits.size());
  for (size_t i = 0; i < ref.logits.size() && i < baton.size(); ++i) {
    err = std::max(err, std::fabs(baton[i] - ref.logits[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(ref.logits[i])));
  }
  return err / scale;
}

TEST(HfRoformerParity, ReferenceKeepsRowsOfBothSequencesAndNoPadding) {
  const Reference& ref = GetReference();
  if (!ref.skip.empty()) GTEST_SKIP() << ref.skip;
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  ASSERT_EQ(ref.lengths.size(), static_cast<size_t>(kBatch));
  ASSERT_LT(ref.lengths[1], kSeq) << "the second sequence is padded, so the mask matters";
  bool second = false;
  for (const int32_t r : ref.rows) {
    ASSERT_LT(r % kSeq, ref.lengths[r / kSeq]) << "row " << r << " is padding";
    second |= r >= kSeq;
  }
  EXPECT_TRUE(second);
}

TEST(HfRoformerParity, Fp32CpuMatchesTransformers) {
  const Reference& ref = GetReference();
  if (!ref.skip.empty()) GTEST_SKIP() << ref.skip;
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  // Both in fp32; summation orders (and HF's f32-rounded RoPE table) differ.
  const double err = MaxRelativeLogitError(BatonLogits(ref, Device::CPU()), ref);
  std::printf("fp32 cpu: max |logit error| / max |logit| = %.3g\n", err);
  EXPECT_LT(err, 1e-4);
}

TEST(HfRoformerParity, Bf16GpuMatchesTransformers) {
  BATON_REQUIRE_GPU();
  const Reference& ref = GetReference();
  if (!ref.skip.empty()) GTEST_SKIP() << ref.skip;
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  // bf16 activations and weights (8 significant bits) through 4 post-LN layers against fp32.
  const double err = MaxRelativeLogitError(BatonLogits(ref, Device::CUDA(0)), ref);
  std::printf("bf16 gpu: max |logit error| / max |logit| = %.3g\n", err);
  EXPECT_LT(err, 3e-2);
}

TEST(HfRoformerParity, ExportLoadsInTransformersAndGivesTheReferenceLogits) {
  const Reference& ref = GetReference();
  if (!ref.skip.empty()) GTEST_SKIP() << ref.skip;
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  auto imported = ImportHfRoformer((ref.dir / "hf").string(), 128);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  const fs::path out = ref.dir / "baton_export";
  ASSERT_TRUE(ExportHfRoformer(out.string(), imported->spec, imported->params).ok());
  bool skip = false;
  const std::string failed =
      RunScript("--out " + (ref.dir / "hf").string() + " --check " + out.string(), ref.dir / "check.log", &skip);
  EXPECT_EQ(failed, "");
}

}  // namespace
}  // namespace baton
