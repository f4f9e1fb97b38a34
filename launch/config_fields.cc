#include "launch/config_fields.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace baton {
namespace {

namespace pb = google::protobuf;

std::string JoinPath(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// `stack` holds the message types being walked so that a recursive message
// type (none in RunConfig today) ends as a leaf instead of looping forever.
void WalkLeaves(const pb::Descriptor* type, const std::string& prefix, std::vector<const pb::Descriptor*>* stack,
                const ConfigLeafVisitor& visit) {
  stack->push_back(type);
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* field = type->field(i);
    const std::string path = JoinPath(prefix, field->name());
    const pb::Descriptor* sub = field->message_type();
    if (sub != nullptr && !field->is_repeated() && std::find(stack->begin(), stack->end(), sub) == stack->end()) {
      WalkLeaves(sub, path, stack, visit);
    } else {
      visit(path, field);
    }
  }
  stack->pop_back();
}

void CollectMessagePaths(const pb::Descriptor* type, const pb::Descriptor* wanted, const std::string& prefix,
                         std::vector<const pb::Descriptor*>* stack, std::vector<std::string>* paths) {
  if (type == wanted) paths->push_back(prefix);
  stack->push_back(type);
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* field = type->field(i);
    const pb::Descriptor* sub = field->message_type();
    if (sub == nullptr || field->is_repeated()) continue;
    if (std::find(stack->begin(), stack->end(), sub) != stack->end()) continue;
    CollectMessagePaths(sub, wanted, JoinPath(prefix, field->name()), stack, paths);
  }
  stack->pop_back();
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  return out + "\"";
}

const char* ScalarTypeName(const pb::FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: return "int32";
    case pb::FieldDescriptor::CPPTYPE_INT64: return "int64";
    case pb::FieldDescriptor::CPPTYPE_UINT32: return "uint32";
    case pb::FieldDescriptor::CPPTYPE_UINT64: return "uint64";
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: return "double";
    case pb::FieldDescriptor::CPPTYPE_FLOAT: return "float";
    case pb::FieldDescriptor::CPPTYPE_BOOL: return "bool";
    case pb::FieldDescriptor::CPPTYPE_STRING: return "string";
    case pb::FieldDescriptor::CPPTYPE_ENUM: return "enum";
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: return "message";
  }
  return "value";
}

}  // namespace

void ForEachConfigLeaf(const pb::Descriptor* type, const ConfigLeafVisitor& visit) {
  std::vector<const pb::Descriptor*> stack;
  WalkLeaves(type, "", &stack, visit);
}

std::string ConfigMessagePath(const pb::Descriptor* root, const pb::Descriptor* type) {
  std::vector<const pb::Descriptor*> stack;
  std::vector<std::string> paths;
  CollectMessagePaths(root, type, "", &stack, &paths);
  return paths.size() == 1 ? paths[0] : type->name();
}

std::string NoSuchFieldMessage(const pb::Descriptor* type, const std::string& where, const std::string& name) {
  std::string names;
  std::string closest;
  size_t closest_distance = 3;  // farther than 2 edits is a different word, not a typo
  for (int i = 0; i < type->field_count(); ++i) {
    const std::string& candidate = type->field(i)->name();
    if (!names.empty()) names += ", ";
    names += candidate;
    const size_t distance = EditDistance(name, candidate);
    if (distance < closest_distance) {
      closest_distance = distance;
      closest = candidate;
    }
  }
  std::string msg = "no field \"" + name + "\" in " + (where.empty() ? type->name() : where) + " (";
  if (!closest.empty()) msg += "did you mean \"" + closest + "\"? ";
  return msg + "fields: " + names + ")";
}

std::string EnumValueNames(const pb::EnumDescriptor* type) {
  std::string names;
  for (int i = 0; i < type->value_count(); ++i) {
    if (i > 0) names += ", ";
    names += type->value(i)->name();
  }
  return names;
}

std::string ConfigTypeName(const pb::FieldDescriptor* field) {
  std::string name = ScalarTypeName(field);
  if (field->enum_type() != nullptr) name = "enum {" + EnumValueNames(field->enum_type()) + "}";
  if (field->message_type() != nullptr) name = field->message_type()->name();
  return field->is_repeated() ? "list of " + name : name;
}

std::string ConfigTypePhrase(const pb::FieldDescriptor* field) {
  if (field->is_repeated()) {
    const std::string list = ConfigTypeName(field);  // "list of int32"
    return "a comma-separated " + list;
  }
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: return "an int32";
    case pb::FieldDescriptor::CPPTYPE_INT64: return "an int64";
    case pb::FieldDescriptor::CPPTYPE_BOOL: return "a bool (true or false)";
    case pb::FieldDescriptor::CPPTYPE_ENUM: return "one of " + EnumValueNames(field->enum_type());
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: return "a message (" + field->message_type()->name() + ")";
    default: return std::string("a ") + ScalarTypeName(field);
  }
}

std::string FormatConfigNumber(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  // Whole numbers read best without an exponent (10000, not 1e+04).
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  // %g writes "1e-05"; users write "1e-5".
  std::string s = buf;
  const size_t e = s.find('e');
  if (e != std::string::npos) {
    std::string mantissa = s.substr(0, e);
    std::string exponent = s.substr(e + 1);
    const bool negative = !exponent.empty() && exponent[0] == '-';
    if (!exponent.empty() && (exponent[0] == '-' || exponent[0] == '+')) exponent.erase(0, 1);
    exponent.erase(0, std::min(exponent.find_first_not_of('0'), exponent.size() - 1));
    s = mantissa + "e" + (negative ? "-" : "") + exponent;
  }
  return s;
}

std::string ConfigValueText(const pb::Message& message, const pb::FieldDescriptor* field) {
  const pb::Reflection* r = message.GetReflection();
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: return std::to_string(r->GetInt32(message, field));
    case pb::FieldDescriptor::CPPTYPE_INT64: return std::to_string(r->GetInt64(message, field));
    case pb::FieldDescriptor::CPPTYPE_UINT32: return std::to_string(r->GetUInt32(message, field));
    case pb::FieldDescriptor::CPPTYPE_UINT64: return std::to_string(r->GetUInt64(message, field));
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: return FormatConfigNumber(r->GetDouble(message, field));
    case pb::FieldDescriptor::CPPTYPE_FLOAT: return FormatConfigNumber(r->GetFloat(message, field));
    case pb::FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(message, field) ? "true" : "false";
    case pb::FieldDescriptor::CPPTYPE_STRING: return Quote(r->GetString(message, field));
    case pb::FieldDescriptor::CPPTYPE_ENUM: return r->GetEnum(message, field)->name();
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: return "{...}";
  }
  return "";
}

std::string ConfigDefaultText(const pb::FieldDescriptor* field) {
  if (field->is_repeated()) return "[]";
  // An empty instance of the containing type reports every field's default.
  const pb::Message* empty = pb::MessageFactory::generated_factory()->GetPrototype(field->containing_type());
  return ConfigValueText(*empty, field);
}

}  // namespace baton
