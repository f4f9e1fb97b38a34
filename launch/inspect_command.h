// `baton inspect`: what a checkpoint holds, with every checksum verified.
#pragma once

#include <string>

#include "runtime/status.h"

namespace baton {
// argv[0] is "inspect". Returns the process exit code (1 when anything is damaged).
int RunInspectCommand(int argc, char** argv);
// The step directory PATH means: itself, or the one LATEST names when PATH is a
// checkpoint directory (holds LATEST) or a run directory (holds ckpt/LATEST).
Result<std::string> ResolveCheckpointPath(const std::string& path);
}  // namespace baton
