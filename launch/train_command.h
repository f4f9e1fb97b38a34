// `baton train`: trains a model described by a run configuration.
#pragma once

namespace baton {
// argv[0] is "train". Returns the process exit code.
int RunTrainCommand(int argc, char** argv);
}  // namespace baton
