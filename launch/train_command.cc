#include "launch/train_command.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "launch/config_help.h"
#include "launch/config_loader.h"
#include "launch/stop_request.h"
#include "launch/train_run.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"

namespace baton {
namespace {

constexpr const char* kUsage = R"(usage: baton train --config FILE [--set path.to.field=value ...] --run-dir DIR [--resume auto|PATH]

Trains the model described by FILE (protobuf text format, see configs/).

  --config FILE       run configuration (.pbtxt)
  --set FIELD=VALUE   override one config field, e.g. --set model.layers=4 (repeatable)
  --run-dir DIR       where config.pbtxt, metrics.jsonl and ckpt/ are written
                      (without --resume it must not hold a run yet)
  --resume auto       continue the run in DIR from its newest usable checkpoint
                      (DIR/ckpt/LATEST; past a damaged one to the one before, saying so);
                      start from scratch when there is none. Use it in batch scripts.
  --resume PATH       continue from that checkpoint step directory (e.g. OLD/ckpt/step_00001000),
                      under any number of stages and replicas
  --help-config       list every config field with its type, default and meaning
  --help              this text

Checkpoints: checkpoint.every=N writes one every N steps (and one after the last step);
SIGUSR1 or SIGTERM to any rank (mpirun forwards SIGUSR1), or checkpoint.wall_time_minutes,
stops every rank at the next step boundary with a checkpoint, exit code 0.

Output: one line per step on stdout (step, loss, lr, gradient norm, ms, tokens/s, ETA),
validation lines, and DIR/metrics.jsonl with one JSON object per line.
)";

struct Args {
  std::string config, run_dir, resume;
  bool resume_given = false;
  std::vector<std::string> sets;
};

// Returns -1 to continue, otherwise the exit code.
int ParseArgs(int argc, char** argv, Args* args) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "baton train: %s needs a value\n%s", flag, kUsage);
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--help-config") {
      std::fputs(ConfigFieldsHelp().c_str(), stdout);
      return 0;
    } else if (a == "--config" || a == "--run-dir" || a == "--set" || a == "--resume") {
      const char* v = value(a.c_str());
      if (!v) return 2;
      if (a == "--config") args->config = v;
      if (a == "--run-dir") args->run_dir = v;
      if (a == "--set") args->sets.push_back(v);
      if (a == "--resume") {
        args->resume = v;
        args->resume_given = true;
      }
    } else if (a.rfind("--resume=", 0) == 0) {
      args->resume = a.substr(9);
      args->resume_given = true;
    } else if (a.rfind("--config=", 0) == 0) {
      args->config = a.substr(9);
    } else if (a.rfind("--run-dir=", 0) == 0) {
      args->run_dir = a.substr(10);
    } else if (a.rfind("--set=", 0) == 0) {
      args->sets.push_back(a.substr(6));
    } else {
      std::fprintf(stderr, "baton train: unknown argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (args->resume_given && args->resume.empty()) {
    std::fprintf(stderr, "baton train: --resume needs auto or a checkpoint directory\n%s", kUsage);
    return 2;
  }
  if (args->config.empty() || args->run_dir.empty()) {
    std::fprintf(stderr, "baton train: --config and --run-dir are required\n%s", kUsage);
    return 2;
  }
  return -1;
}

}  // namespace

int RunTrainCommand(int argc, char** argv) {
  Args args;
  if (int code = ParseArgs(argc, argv, &args); code >= 0) return code;
  // Before anything slow: SIGUSR1's default action would kill a rank that is still starting.
  InstallStopSignalHandlers();
  MpiWorld& world = MpiWorld::Init(&argc, &argv);
  Result<RunConfig> config = LoadRunConfig(args.config, args.sets);
  Status status = config.ok() ? RunTraining({*config, args.config, args.run_dir, args.resume}, world) : config.status();
  if (!status.ok()) world.Abort(status);  // every rank goes down, never a hang
  world.Finalize();
  return 0;
}

}  // namespace baton
