// Typed reads of a transformers config.json's fields for the model families'
// importers (hf_gpt2.cc, hf_roformer.cc):
// an absent (or null) optional field takes the transformers default the caller
// passes; a mistyped one, or a flag set to a value baton cannot compute, is an
// error naming the file and the field.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/status.h"

namespace baton {

class HfConfigFields {
 public:
  // `j` must outlive this object; `source` (the file name) starts every message.
  HfConfigFields(const nlohmann::json& j, std::string source) : j_(j), source_(std::move(source)) {}

  // Parses `text` as a JSON object, or says why it is not one.
  static Result<nlohmann::json> Parse(const std::string& text, const std::string& source);
  // The importers' vocab_multiple argument: >= 1, or an error starting with `source`.
  static Status CheckVocabMultiple(int64_t vocab_multiple, const std::string& source);
  // padded_vocab: vocab rounded up to a multiple of vocab_multiple (checked >= 1).
  static int64_t PaddedVocab(int64_t vocab, int64_t vocab_multiple);

  const std::string& source() const { return source_; }
  bool Has(const char* field) const;  // present and not null

  Result<int64_t> PositiveInt(const char* field) const;  // required
  Result<int64_t> PositiveInt(const char* field, int64_t fallback) const;
  Result<double> Number(const char* field, double fallback) const;
  Result<bool> Bool(const char* field, bool fallback) const;
  Result<std::string> String(const char* field, const std::string& fallback) const;
  // A flag (default `expected` when absent) whose other value baton cannot compute.
  Status Require(const char* field, bool expected, const std::string& why) const;
  // OK when `value` (of `field`) names the tanh GELU baton computes ("gelu_new" or
  // "gelu_pytorch_tanh"); Unimplemented otherwise.
  Status RequireTanhGelu(const char* field, const std::string& value) const;
  // "SOURCE: field F is VALUE, expected EXPECTED".
  Status Bad(const char* field, const nlohmann::json& value, const std::string& expected) const;

 private:
  const nlohmann::json& j_;
  std::string source_;
};

}  // namespace baton
