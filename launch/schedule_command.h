// `baton schedule`: builds a pipeline schedule, verifies it and prints the
// per-rank timeline, the bubble fraction and the activation memory.
#pragma once

#include <ostream>

namespace baton {
// argv[0] is "schedule". Returns the process exit code: 0 on success, 2 for
// bad arguments, 1 when the verifier rejects the schedule (e.g. over
// --memory-budget).
int RunScheduleCommand(int argc, char** argv);
// The same, writing to `out` and `err` instead of stdout and stderr (tests).
int RunScheduleCommand(int argc, char** argv, std::ostream& out, std::ostream& err);
}  // namespace baton
