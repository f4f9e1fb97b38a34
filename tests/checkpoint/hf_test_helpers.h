// What the Hugging Face interop tests (hf_gpt2_test.cc, hf_roformer_test.cc
// and their logits-parity tests) share: random parameters of a built model,
// named-tensor lists found in and edited, imports compared with what was
// exported, config.json refusals, and the reference scripts' raw output files.
// SameBytes is checkpoint/hf_model_dir.h's.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/hf_model_dir.h"
#include "layers/model.h"
#include "runtime/rng.h"
#include "tests/checkpoint/scratch_files.h"

namespace baton::testing {

// Every parameter of a built model, refilled with fresh random values (the
// model's own init has constant norms and zero biases, which would hide swaps).
inline ParamTensors RandomParams(const ModelSpec& spec, uint64_t seed) {
  const Model model = Model::Build(spec, seed, DType::kF32, Device::CPU(), 0, spec.list_size());
  ParamTensors params;
  uint64_t stream = 0;
  for (Param* p : model.params()) {
    RandomStream rng(seed, ++stream);
    Tensor t = p->value.Clone();
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(rng.Normal());
    params.emplace(p->name, t);
  }
  return params;
}

inline const Tensor& Find(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  ADD_FAILURE() << "no tensor " << name;
  static const Tensor none = Tensor::Zeros({1}, DType::kF32);
  return none;
}

inline NamedTensors Without(const NamedTensors& tensors, const std::string& name) {
  NamedTensors out;
  for (const auto& nt : tensors)
    if (nt.first != name) out.push_back(nt);
  return out;
}

inline NamedTensors Replaced(const NamedTensors& tensors, const std::string& name, const Tensor& t) {
  NamedTensors out = tensors;
  for (auto& [n, v] : out)
    if (n == name) v = t;
  return out;
}

// Element [i] of a vector or [i][j] of a matrix (f32).
inline float At(const Tensor& t, int64_t i, int64_t j = 0) {
  return t.rank() == 1 ? t.data<float>()[i] : t.data<float>()[i * t.dim(1) + j];
}

// Baton's tensors back, bitwise, with the rows from `vocab` on of the `padded`
// ones (those HF stores without baton's padding rows) zero.
inline void ExpectImportedEqual(const ParamTensors& imported, const ParamTensors& baton, int64_t vocab,
                                const std::set<std::string>& padded) {
  ASSERT_EQ(imported.size(), baton.size());
  for (const auto& [name, t] : baton) {
    ASSERT_TRUE(imported.count(name)) << name;
    const Tensor& got = imported.at(name);
    if (!padded.count(name)) {
      EXPECT_TRUE(SameBytes(got, t)) << name;
      continue;
    }
    ASSERT_EQ(got.shape(), t.shape()) << name;
    EXPECT_TRUE(SameBytes(got.Rows(0, vocab), t.Rows(0, vocab))) << name;
    for (const double v : got.Rows(vocab, t.dim(0)).ToDoubles()) ASSERT_EQ(v, 0.0) << name << " padding";
  }
}

// A refusal whose message contains `text`.
inline void ExpectRefused(const Status& status, const std::string& text) {
  ASSERT_FALSE(status.ok()) << text;
  EXPECT_TRUE(Contains(status.message(), text));
}

// out_dir/model.safetensors holds `count` tensors and the metadata
// {"format": "pt"} that transformers requires.
inline void ExpectHfWeightsFile(const std::string& out_dir, size_t count) {
  std::map<std::string, std::string> metadata;
  Result<NamedTensors> file = ReadSafetensors(out_dir + "/model.safetensors", &metadata);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(metadata["format"], "pt") << "transformers refuses safetensors files without it";
  EXPECT_EQ(file->size(), count);
}

// A config.json field's value for WithField that erases the field.
inline const nlohmann::json kAbsent(nlohmann::json::value_t::discarded);

// `j` with `field` set to `value`, or erased when `value` is kAbsent.
inline nlohmann::json WithField(nlohmann::json j, const char* field, const nlohmann::json& value) {
  if (value.is_discarded()) {
    j.erase(field);
  } else {
    j[field] = value;
  }
  return j;
}

// A config reader's refusal of `field`: its message starts with the file
// ("SOURCE: field ") and names the field and `text`.
inline void ExpectFieldRefused(const Status& status, const std::string& source, const char* field,
                               const std::string& text) {
  ASSERT_FALSE(status.ok()) << field;
  EXPECT_TRUE(Contains(status.message(), source + ": field ")) << field;
  EXPECT_TRUE(Contains(status.message(), std::string("field ") + field)) << field;
  EXPECT_TRUE(Contains(status.message(), text)) << field;
}

// A reference script's output file of raw T values (native byte order).
template <typename T>
std::vector<T> ReadRaw(const std::string& path) {
  const std::string bytes = ReadFileBytes(path);
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

}  // namespace baton::testing
