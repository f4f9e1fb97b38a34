#include "checkpoint/hf_config_fields.h"

namespace baton {

using json = nlohmann::json;

Result<json> HfConfigFields::Parse(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    return Status::InvalidArgument(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) return Status::InvalidArgument(source + ": expected a JSON object");
  return j;
}

Status HfConfigFields::CheckVocabMultiple(int64_t vocab_multiple, const std::string& source) {
  if (vocab_multiple >= 1) return Status::OK();
  return Status::InvalidArgument(source + ": vocab_multiple is " + std::to_string(vocab_multiple) + ", expected >= 1");
}

int64_t HfConfigFields::PaddedVocab(int64_t vocab, int64_t vocab_multiple) {
  return (vocab + vocab_multiple - 1) / vocab_multiple * vocab_multiple;
}

bool HfConfigFields::Has(const char* field) const {
  const auto it = j_.find(field);
  return it != j_.end() && !it->is_null();
}

Result<int64_t> HfConfigFields::PositiveInt(const char* field) const {
  if (!Has(field)) return Status::InvalidArgument(source_ + ": field " + field + " is missing");
  return PositiveInt(field, 0);
}

Result<int64_t> HfConfigFields::PositiveInt(const char* field, int64_t fallback) const {
  if (!Has(field)) return fallback;
  const json& v = j_.at(field);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) return Bad(field, v, "a positive integer");
  return v.get<int64_t>();
}

Result<double> HfConfigFields::Number(const char* field, double fallback) const {
  if (!Has(field)) return fallback;
  const json& v = j_.at(field);
  if (!v.is_number()) return Bad(field, v, "a number");
  return v.get<double>();
}

Result<bool> HfConfigFields::Bool(const char* field, bool fallback) const {
  if (!Has(field)) return fallback;
  const json& v = j_.at(field);
  if (!v.is_boolean()) return Bad(field, v, "true or false");
  return v.get<bool>();
}

Result<std::string> HfConfigFields::String(const char* field, const std::string& fallback) const {
  if (!Has(field)) return fallback;
  const json& v = j_.at(field);
  if (!v.is_string()) return Bad(field, v, "a string");
  return v.get<std::string>();
}

Status HfConfigFields::Require(const char* field, bool expected, const std::string& why) const {
  BATON_ASSIGN_OR_RETURN(const bool value, Bool(field, expected));
  if (value == expected) return Status::OK();
  return Status::Unimplemented(source_ + ": field " + field + " is " + (value ? "true" : "false") +
                               ", baton supports only " + (expected ? "true" : "false") + " (" + why + ")");
}

Status HfConfigFields::RequireTanhGelu(const char* field, const std::string& value) const {
  if (value == "gelu_new" || value == "gelu_pytorch_tanh") return Status::OK();
  return Status::Unimplemented(source_ + ": field " + field + " is \"" + value +
                               "\", baton supports only the tanh GELU (\"gelu_new\" or \"gelu_pytorch_tanh\")");
}

Status HfConfigFields::Bad(const char* field, const json& value, const std::string& expected) const {
  return Status::InvalidArgument(source_ + ": field " + field + " is " + value.dump() + ", expected " + expected);
}

}  // namespace baton
