#include "launch/config_help.h"

#include <algorithm>
#include <vector>

#include "launch/config_fields.h"
#include "proto/config.pb.h"
#include "proto/options.pb.h"

namespace baton {
namespace {

namespace pb = google::protobuf;

std::string RangeText(const pb::FieldOptions& options) {
  const bool has_min = options.HasExtension(baton::min);
  const bool has_max = options.HasExtension(baton::max);
  const std::string lo = FormatConfigNumber(options.GetExtension(baton::min));
  const std::string hi = FormatConfigNumber(options.GetExtension(baton::max));
  if (has_min && has_max) return lo + " to " + hi;
  if (has_min) return "at least " + lo;
  if (has_max) return "at most " + hi;
  return "";
}

}  // namespace

std::string ConfigFieldsHelp() {
  std::vector<std::pair<std::string, const pb::FieldDescriptor*>> leaves;
  ForEachConfigLeaf(RunConfig::descriptor(),
                    [&](const std::string& path, const pb::FieldDescriptor* field) { leaves.emplace_back(path, field); });
  size_t width = 0;
  for (const auto& leaf : leaves) width = std::max(width, leaf.first.size());

  std::string out;
  for (const auto& [path, field] : leaves) {
    std::string line = path + std::string(width + 2 - path.size(), ' ') + ConfigTypeName(field) + ", default " +
                       ConfigDefaultText(field);
    const std::string range = RangeText(field->options());
    if (!range.empty()) line += ", " + range;
    const std::string& help = field->options().GetExtension(baton::help);
    if (!help.empty()) line += ": " + help;
    out += line + "\n";
  }
  return out;
}

}  // namespace baton
