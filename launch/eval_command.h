// `baton eval`: the validation loss of a run's checkpoint, computed in one
// process exactly as `baton train` computes it at that step (the same fixed
// validation sample, drawn with kValidationSeed; the same forward pass), for
// any checkpoint of the run, another validation set or a larger sample.
#pragma once

namespace baton {
// argv[0] is "eval". Returns the process exit code: 0, 1 (the evaluation
// failed, the reason on stderr) or 2 (bad arguments, or started as more than
// one MPI rank).
int RunEvalCommand(int argc, char** argv);
}  // namespace baton
