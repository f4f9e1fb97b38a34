// How RunConfig fields are named and described to users. The file parser,
// --set, the validator and --help-config all talk about fields; sharing one
// vocabulary (dotted paths, type phrases, value text, "no field X in Y")
// keeps their messages consistent.
#pragma once

#include <functional>
#include <string>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

namespace baton {

using ConfigLeafVisitor =
    std::function<void(const std::string& path, const google::protobuf::FieldDescriptor* field)>;

// Calls `visit` for every field below `type` that is not a singular message,
// depth first in declaration order, with its dotted path ("model.hidden").
void ForEachConfigLeaf(const google::protobuf::Descriptor* type, const ConfigLeafVisitor& visit);

// Dotted path at which `type` sits below `root` ("model" for ModelConfig
// under RunConfig, "" for root itself). Falls back to the type's name when
// the type is not reachable or sits at several paths.
std::string ConfigMessagePath(const google::protobuf::Descriptor* root, const google::protobuf::Descriptor* type);

// `no field "hiden" in model (did you mean "hidden"? fields: family, ...)`.
// `where` is the dotted path of the message, "" for the top level.
std::string NoSuchFieldMessage(const google::protobuf::Descriptor* type, const std::string& where,
                               const std::string& name);

// "int32", "bool", "enum {GPT2, GPT_ROPE}", "list of string": for help text.
std::string ConfigTypeName(const google::protobuf::FieldDescriptor* field);

// "an int32", "a bool (true or false)", "one of GPT2, GPT_ROPE": completes
// "model.hidden is ..." in error messages.
std::string ConfigTypePhrase(const google::protobuf::FieldDescriptor* field);

// "GPT2, GPT_ROPE, ROFORMER, ROFORMER_V2".
std::string EnumValueNames(const google::protobuf::EnumDescriptor* type);

// Shortest text that reads back as `v` ("0.02", "1e-30", "10000").
std::string FormatConfigNumber(double v);

// The value of a singular leaf field (set or default) as a user writes it in
// a config file: 12, 0.02, true, GPT2, "data/*.bin".
std::string ConfigValueText(const google::protobuf::Message& message, const google::protobuf::FieldDescriptor* field);

// The proto2 default of a singular leaf field, written as ConfigValueText does.
std::string ConfigDefaultText(const google::protobuf::FieldDescriptor* field);

}  // namespace baton
