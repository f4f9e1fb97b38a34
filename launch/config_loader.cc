#include "launch/config_loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <vector>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include "launch/config_fields.h"
#include "launch/config_override.h"
#include "launch/config_validation.h"

namespace baton {
namespace {

namespace pb = google::protobuf;

// Turns the text-format parser's messages into ones that name the file,
// the position, the field's dotted path and what the field accepts.
class ConfigErrorCollector : public pb::io::ErrorCollector {
 public:
  ConfigErrorCollector(const std::string& source, const std::string& text) : source_(source) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines_.push_back(line);
    // Leaf field names are unique across RunConfig today; a name that is not
    // (or no longer is) simply gets no type hint.
    ForEachConfigLeaf(RunConfig::descriptor(), [this](const std::string& path, const pb::FieldDescriptor* field) {
      auto [it, inserted] = leaves_.emplace(field->name(), std::make_pair(path, field));
      if (!inserted) it->second.second = nullptr;
    });
  }

  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    column = UnknownFieldColumn(line, column, message);
    std::string where = source_;
    if (line >= 0) where += ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1);
    errors_.push_back(where + ": " + Explain(line, column, message));
  }

  std::string Errors() const {
    std::string all;
    for (const std::string& e : errors_) all += (all.empty() ? "" : "\n") + e;
    return all.empty() ? source_ + ": not a valid RunConfig text file" : all;
  }

 private:
  // The parser reports an unknown field after reading past its name; the
  // user's editor should land on the name itself.
  int UnknownFieldColumn(int line, int column, const std::string& message) const {
    std::smatch m;
    if (line < 0 || line >= static_cast<int>(lines_.size()) || !std::regex_match(message, m, NoFieldPattern())) {
      return column;
    }
    const size_t at = lines_[line].rfind(m[2].str(), std::max(0, column));
    return at == std::string::npos ? column : static_cast<int>(at);
  }

  static const std::regex& NoFieldPattern() {
    static const std::regex pattern(R"re(Message type "([\w.]+)" has no field named "(\w+)"\.?)re");
    return pattern;
  }

  std::string Explain(int line, int column, const std::string& message) const {
    const std::regex& kNoField = NoFieldPattern();
    std::smatch m;
    if (std::regex_match(message, m, kNoField)) {
      const pb::Descriptor* type = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(m[1].str());
      if (type != nullptr) {
        return NoSuchFieldMessage(type, ConfigMessagePath(RunConfig::descriptor(), type), m[2].str());
      }
      return message;
    }
    // Value errors ("Expected integer, got: "abc"") do not say which field;
    // the parser's message is kept and the field's type is added.
    // At the end of the text the parser says "Expected identifier, got: ".
    if (message.size() >= 5 && message.compare(message.size() - 5, 5, "got: ") == 0) {
      return message + "end of file (is a closing } missing?)";
    }
    static const std::regex kValueError(R"re(^(Expected|Unknown enumeration|Invalid value|Integer out of range))re");
    if (!std::regex_search(message, kValueError)) return message;
    const pb::FieldDescriptor* field = nullptr;
    std::string path;
    if (!FieldNamed(FieldNameIn(message, line, column), &path, &field)) return message;
    return message + " (" + path + " is " + ConfigTypePhrase(field) + ")";
  }

  // The parser names the field in some messages; otherwise the field is the
  // last "name:" before the error on its line.
  std::string FieldNameIn(const std::string& message, int line, int column) const {
    static const std::regex kQuotedField(R"re(field "(\w+)")re");
    std::smatch m;
    if (std::regex_search(message, m, kQuotedField)) return m[1].str();
    if (line < 0 || line >= static_cast<int>(lines_.size())) return "";
    const std::string before = lines_[line].substr(0, std::max(0, column));
    static const std::regex kFieldColon(R"re((\w+)\s*:)re");
    std::string name;
    for (auto it = std::sregex_iterator(before.begin(), before.end(), kFieldColon); it != std::sregex_iterator();
         ++it) {
      name = (*it)[1].str();
    }
    return name;
  }

  bool FieldNamed(const std::string& name, std::string* path, const pb::FieldDescriptor** field) const {
    auto it = leaves_.find(name);
    if (it == leaves_.end() || it->second.second == nullptr) return false;
    *path = it->second.first;
    *field = it->second.second;
    return true;
  }

  std::string source_;
  std::vector<std::string> lines_;
  std::map<std::string, std::pair<std::string, const pb::FieldDescriptor*>> leaves_;
  std::vector<std::string> errors_;
};

Result<std::string> ReadConfigFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Status::InvalidArgument(path + ": is a directory, expected a RunConfig text file (.pbtxt)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string why = "cannot read the config file (" + std::string(std::strerror(err)) + ")";
    if (err == ENOENT) return Status::NotFound(path + ": " + why);
    return Status::IOError(path + ": " + why);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IOError(path + ": error while reading the config file");
  return text.str();
}

}  // namespace

Result<RunConfig> ParseRunConfigText(const std::string& text, const std::string& source) {
  ConfigErrorCollector errors(source, text);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  RunConfig config;
  if (!parser.ParseFromString(text, &config)) return Status::InvalidArgument(errors.Errors());
  return config;
}

Result<RunConfig> LoadRunConfig(const std::string& path, const std::vector<std::string>& overrides) {
  BATON_ASSIGN_OR_RETURN(std::string text, ReadConfigFile(path));
  BATON_ASSIGN_OR_RETURN(RunConfig config, ParseRunConfigText(text, path));
  for (const std::string& assignment : overrides) BATON_RETURN_IF_ERROR(ApplyOverride(&config, assignment));
  BATON_RETURN_IF_ERROR(ValidateRunConfig(config, path));
  return config;
}

}  // namespace baton
