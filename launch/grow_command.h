// `baton grow`: a committed checkpoint of a larger model that computes the same
// function as a trained small one (checkpoint/model_growth.h), which
// `baton train --resume auto` continues under any pipeline layout.
#pragma once

namespace baton {
// argv[0] is "grow". Returns the process exit code.
int RunGrowCommand(int argc, char** argv);
}  // namespace baton
