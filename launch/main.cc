// The baton command: one binary, one subcommand per job.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "launch/eval_command.h"
#include "launch/grow_command.h"
#include "launch/hf_command.h"
#include "launch/inspect_command.h"
#include "launch/prepare_command.h"
#include "launch/schedule_command.h"
#include "launch/train_command.h"

namespace {

constexpr const char* kUsage = R"(usage: baton <command> [options]

commands:
  train     train a model from a run configuration      (baton train --help)
  prepare   tokenize text files into token shards        (baton prepare --help)
  schedule  show a pipeline schedule and its bubble      (baton schedule --help)
  inspect   show a checkpoint and verify its checksums   (baton inspect --help)
  export    write a checkpoint as a Hugging Face model    (baton export --help)
  import    start a run from Hugging Face weights         (baton import --help)
  eval      validation loss of a run's checkpoint         (baton eval --help)
  grow      grow a trained model into a larger, equal one  (baton grow --help)
)";

// Our CPU kernels use OpenMP and matrix products use OpenBLAS's own threads.
// With OpenMP's default spin-waiting, idle OpenMP threads burn the cores
// OpenBLAS needs (measured: half the training throughput on 2 cores). The
// wait policy is read when libgomp loads, before main, so set it and re-exec
// once; a user's own OMP_WAIT_POLICY is left alone.
void EnsurePassiveOpenMpWait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: carry on at the slower setting
}

}  // namespace

int main(int argc, char** argv) {
  EnsurePassiveOpenMpWait(argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "train") return baton::RunTrainCommand(argc - 1, argv + 1);
  if (command == "prepare") return baton::RunPrepareCommand(argc - 1, argv + 1);
  if (command == "schedule") return baton::RunScheduleCommand(argc - 1, argv + 1);
  if (command == "inspect") return baton::RunInspectCommand(argc - 1, argv + 1);
  if (command == "export") return baton::RunExportCommand(argc - 1, argv + 1);
  if (command == "import") return baton::RunImportCommand(argc - 1, argv + 1);
  if (command == "eval") return baton::RunEvalCommand(argc - 1, argv + 1);
  if (command == "grow") return baton::RunGrowCommand(argc - 1, argv + 1);
  std::fprintf(stderr, "baton: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
