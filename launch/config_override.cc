#include "launch/config_override.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

#include "launch/config_fields.h"

namespace baton {
namespace {

namespace pb = google::protobuf;

std::vector<std::string> Split(const std::string& s, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(separator, start);
    parts.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

// Numbers arrive from a shell, where stray spaces are a quoting accident
// rather than part of the value; strings keep theirs.
std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Whole-string base-10 parse; strtoll alone accepts "12abc" and saturates on
// overflow, which would silently change the value the user asked for.
bool ParseSigned(const std::string& text, long long lo, long long hi, long long* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool ParseUnsigned(const std::string& text, unsigned long long hi, unsigned long long* out) {
  // strtoull quietly negates "-1" into a huge value.
  if (text.empty() || text[0] == '-') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE || v > hi) return false;
  *out = v;
  return true;
}

bool ParseDouble(const std::string& text, double* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (*end != '\0' || (errno == ERANGE && std::isinf(v))) return false;
  *out = v;
  return true;
}

// A well-formed integer that still failed to parse was out of range; saying
// so spares the user from hunting for a typo.
bool LooksLikeInteger(const std::string& text) {
  size_t i = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  if (i == text.size()) return false;
  for (; i < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

// Sets a singular field or appends to a repeated one. Returns "" on success, else why the text does not fit.
std::string SetValue(pb::Message* message, const pb::FieldDescriptor* field, const std::string& raw) {
  const pb::Reflection* r = message->GetReflection();
  const bool repeated = field->is_repeated();
  const std::string text = field->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING ? raw : Trim(raw);
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      long long v;
      if (!ParseSigned(text, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), &v)) break;
      repeated ? r->AddInt32(message, field, static_cast<int32_t>(v))
               : r->SetInt32(message, field, static_cast<int32_t>(v));
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      long long v;
      if (!ParseSigned(text, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &v)) break;
      repeated ? r->AddInt64(message, field, v) : r->SetInt64(message, field, v);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32: {
      unsigned long long v;
      if (!ParseUnsigned(text, std::numeric_limits<uint32_t>::max(), &v)) break;
      repeated ? r->AddUInt32(message, field, static_cast<uint32_t>(v))
               : r->SetUInt32(message, field, static_cast<uint32_t>(v));
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_UINT64: {
      unsigned long long v;
      if (!ParseUnsigned(text, std::numeric_limits<uint64_t>::max(), &v)) break;
      repeated ? r->AddUInt64(message, field, v) : r->SetUInt64(message, field, v);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
      double v;
      if (!ParseDouble(text, &v)) break;
      repeated ? r->AddDouble(message, field, v) : r->SetDouble(message, field, v);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      double v;
      if (!ParseDouble(text, &v)) break;
      if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) break;
      repeated ? r->AddFloat(message, field, static_cast<float>(v))
               : r->SetFloat(message, field, static_cast<float>(v));
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      const std::string lower = Lower(text);
      bool v;
      if (lower == "true" || lower == "1") {
        v = true;
      } else if (lower == "false" || lower == "0") {
        v = false;
      } else {
        break;
      }
      repeated ? r->AddBool(message, field, v) : r->SetBool(message, field, v);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_STRING:
      repeated ? r->AddString(message, field, text) : r->SetString(message, field, text);
      return "";
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumDescriptor* type = field->enum_type();
      const pb::EnumValueDescriptor* value = type->FindValueByName(text);
      // Enum names are unique ignoring case, so "cosine" can only mean COSINE.
      for (int i = 0; value == nullptr && i < type->value_count(); ++i) {
        if (Lower(type->value(i)->name()) == Lower(text)) value = type->value(i);
      }
      if (value == nullptr) break;
      repeated ? r->AddEnum(message, field, value) : r->SetEnum(message, field, value);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      break;  // callers reject message fields before getting here
  }
  std::string why = "got \"" + raw + "\"";
  const pb::FieldDescriptor::CppType t = field->cpp_type();
  const bool integer_field = t == pb::FieldDescriptor::CPPTYPE_INT32 || t == pb::FieldDescriptor::CPPTYPE_INT64 ||
                             t == pb::FieldDescriptor::CPPTYPE_UINT32 || t == pb::FieldDescriptor::CPPTYPE_UINT64;
  if (integer_field && LooksLikeInteger(text)) {
    why += " (out of range)";
  }
  return why;
}

}  // namespace

Status ApplyOverrideToMessage(pb::Message* message, const std::string& assignment) {
  const std::string context = "--set " + assignment;
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Status::InvalidArgument(context + ": expected path.to.field=value, e.g. --set model.hidden=256");
  }
  const std::string path = Trim(assignment.substr(0, eq));
  const std::string value = assignment.substr(eq + 1);
  const std::vector<std::string> names = Split(path, '.');

  pb::Message* current = message;
  std::string walked;  // dotted path of `current`, for messages
  for (size_t i = 0; i < names.size(); ++i) {
    const pb::Descriptor* type = current->GetDescriptor();
    if (names[i].empty()) {
      return Status::InvalidArgument(context + ": \"" + path + "\" has an empty field name");
    }
    const pb::FieldDescriptor* field = type->FindFieldByName(names[i]);
    if (field == nullptr) return Status::InvalidArgument(context + ": " + NoSuchFieldMessage(type, walked, names[i]));
    walked = walked.empty() ? names[i] : walked + "." + names[i];
    const bool last = i + 1 == names.size();

    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated()) {
      if (last) {
        std::string leaves;
        ForEachConfigLeaf(field->message_type(), [&](const std::string& leaf, const pb::FieldDescriptor*) {
          leaves += (leaves.empty() ? "" : ", ") + walked + "." + leaf;
        });
        return Status::InvalidArgument(context + ": " + walked + " is a message; set one of its fields (" + leaves +
                                       ")");
      }
      current = current->GetReflection()->MutableMessage(current, field);
      continue;
    }
    if (!last) {
      return Status::InvalidArgument(context + ": " + walked + " is " + ConfigTypePhrase(field) +
                                     ", it has no field \"" + names[i + 1] + "\"");
    }

    if (!field->is_repeated()) {
      const std::string why = SetValue(current, field, value);
      if (!why.empty()) return Status::InvalidArgument(context + ": " + walked + " is " + ConfigTypePhrase(field) + ", " + why);
      return Status::OK();
    }
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      return Status::InvalidArgument(context + ": " + walked + " is " + ConfigTypePhrase(field) +
                                     ", which --set cannot write; put it in the config file");
    }
    // A list is replaced as a whole: appending would make the result depend
    // on what the file held, which a command-line override should not.
    current->GetReflection()->ClearField(current, field);
    if (Trim(value).empty()) return Status::OK();
    for (const std::string& item : Split(value, ',')) {
      const std::string why = SetValue(current, field, item);
      if (!why.empty()) return Status::InvalidArgument(context + ": " + walked + " is " + ConfigTypePhrase(field) + ", " + why);
    }
    return Status::OK();
  }
  return Status::InvalidArgument(context + ": expected path.to.field=value");
}

Status ApplyOverride(RunConfig* config, const std::string& assignment) {
  return ApplyOverrideToMessage(config, assignment);
}

}  // namespace baton
