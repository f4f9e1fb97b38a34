#include "launch/config_effective.h"

#include <google/protobuf/text_format.h>

namespace baton {
namespace {

namespace pb = google::protobuf;

// Marks every unset field as set to its default, since the text printer
// writes only fields that are present.
void SetDefaultsExplicitly(pb::Message* message) {
  const pb::Descriptor* type = message->GetDescriptor();
  const pb::Reflection* r = message->GetReflection();
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* f = type->field(i);
    if (f->is_repeated()) continue;  // an empty list has nothing to write
    // Setting a default into a oneof would displace the member that is set.
    if (f->containing_oneof() != nullptr) continue;
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      SetDefaultsExplicitly(r->MutableMessage(message, f));
      continue;
    }
    if (r->HasField(*message, f)) continue;
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_INT32: r->SetInt32(message, f, f->default_value_int32()); break;
      case pb::FieldDescriptor::CPPTYPE_INT64: r->SetInt64(message, f, f->default_value_int64()); break;
      case pb::FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(message, f, f->default_value_uint32()); break;
      case pb::FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(message, f, f->default_value_uint64()); break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(message, f, f->default_value_double()); break;
      case pb::FieldDescriptor::CPPTYPE_FLOAT: r->SetFloat(message, f, f->default_value_float()); break;
      case pb::FieldDescriptor::CPPTYPE_BOOL: r->SetBool(message, f, f->default_value_bool()); break;
      case pb::FieldDescriptor::CPPTYPE_STRING: r->SetString(message, f, f->default_value_string()); break;
      case pb::FieldDescriptor::CPPTYPE_ENUM: r->SetEnum(message, f, f->default_value_enum()); break;
      case pb::FieldDescriptor::CPPTYPE_MESSAGE: break;
    }
  }
}

}  // namespace

std::string EffectiveConfigText(const RunConfig& config) {
  RunConfig filled = config;
  SetDefaultsExplicitly(&filled);
  std::string text;
  pb::TextFormat::Printer printer;
  printer.PrintToString(filled, &text);
  return text;
}

ObjectiveConfig::Kind EffectiveObjective(const RunConfig& config) {
  if (config.objective().kind() != ObjectiveConfig::FAMILY_DEFAULT) return config.objective().kind();
  const ModelConfig::Family f = config.model().family();
  return f == ModelConfig::ROFORMER || f == ModelConfig::ROFORMER_V2 ? ObjectiveConfig::MASKED_LM
                                                                      : ObjectiveConfig::CAUSAL_LM;
}

}  // namespace baton
