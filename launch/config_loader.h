// Loads the RunConfig of a run: the text-format file, then the command-line
// --set overrides in order, then validation. Defaults are the proto2 defaults
// declared in proto/config.proto; nothing else is filled in.
#pragma once

#include <string>
#include <vector>

#include "proto/config.pb.h"
#include "runtime/status.h"

namespace baton {

// Every error names the file (file:line:col for syntax errors) or the --set
// assignment, the field path, and what is allowed. Validation problems are
// reported all at once, one per line.
Result<RunConfig> LoadRunConfig(const std::string& path, const std::vector<std::string>& overrides);

// Parses text-format RunConfig `text`; `source` names it in errors
// ("configs/x.pbtxt:3:5: ..."). Does not validate.
Result<RunConfig> ParseRunConfigText(const std::string& text, const std::string& source);

}  // namespace baton
