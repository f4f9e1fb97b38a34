#include "launch/eval_command.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/checkpoint_reader.h"
#include "data/token_dataset.h"
#include "launch/compute_device.h"
#include "launch/config_effective.h"
#include "launch/config_loader.h"
#include "launch/objective_data.h"
#include "launch/run_spec.h"
#include "launch/trainer_checkpoint.h"
#include "layers/model.h"
#include "layers/ops.h"
#include "pipeline/trainer.h"
#include "runtime/atomic_file.h"
#include "runtime/mpi_world.h"

namespace baton {
namespace {

constexpr const char* kUsage = R"(usage: baton eval --run-dir DIR [--step N] [--config FILE] [--set FIELD=VALUE ...] [--json OUT]

Computes the validation loss of a checkpoint of the run in DIR exactly as `baton train`
computes it at that step: the same fixed sample of the validation set (train.eval_batches
micro-batches of train.microbatch_size examples from data.val, under the run's objective)
and the same forward pass. One process, on train.device, whatever numbers of stages and
replicas wrote the checkpoint (do not start it under mpirun).

  --run-dir DIR       the run: its effective config DIR/config.pbtxt and its checkpoints
                      (DIR/ckpt, or the config's checkpoint.dir)
  --step N            evaluate the checkpoint of step N (default: the newest, DIR/ckpt/LATEST)
  --config FILE       the configuration to use instead of DIR/config.pbtxt; its model fields
                      must describe the checkpoint's model
  --set FIELD=VALUE   override one config field, as for baton train (repeatable), e.g.
                      --set data.val='other/val_*.bin'   another validation set
                      --set train.eval_batches=50         a larger sample
  --json OUT          where the result goes (default: DIR/eval_step_<N>.json)
  --help              this text

Output: one line `val_loss=<value>` on stdout (%.17g: the double exactly), what was
evaluated on stderr, and a JSON object with step, val_loss, checkpoint, config, val,
eval_batches, microbatch_size, loss_targets, objective and device.

On the CPU with the run's train.threads, the value equals the val_loss the run logged at
that step in metrics.jsonl, bit for bit, for runs of one replica and any number of
pipeline stages. (With parallel.replicas > 1 training adds the replicas' partial sums, so
the last bits may differ.)
)";

struct EvalArgs {
  std::string run_dir, config, json;
  std::optional<int64_t> step;
  std::vector<std::string> sets;
};

// Returns -1 to continue, otherwise the exit code.
int ParseArgs(int argc, char** argv, EvalArgs* args) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], v;
    bool has_value = false;
    if (const size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      v = a.substr(eq + 1);  // --flag=value
      a = a.substr(0, eq);
      has_value = true;
    }
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a != "--run-dir" && a != "--step" && a != "--config" && a != "--set" && a != "--json") {
      std::fprintf(stderr, "baton eval: unknown argument '%s'\n%s", argv[i], kUsage);
      return 2;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "baton eval: %s needs a value\n%s", a.c_str(), kUsage);
        return 2;
      }
      v = argv[++i];
    }
    if (a == "--run-dir") args->run_dir = v;
    if (a == "--config") args->config = v;
    if (a == "--json") args->json = v;
    if (a == "--set") args->sets.push_back(v);
    if (a == "--step") {
      char* end = nullptr;
      errno = 0;
      const long long step = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || errno != 0 || step < 0) {
        std::fprintf(stderr, "baton eval: --step %s: expected a step number (0, 1, 2, ...)\n%s", v.c_str(), kUsage);
        return 2;
      }
      args->step = step;
    }
  }
  if (args->run_dir.empty()) {
    std::fprintf(stderr, "baton eval: --run-dir is required\n%s", kUsage);
    return 2;
  }
  return -1;
}

std::string StepList(const std::vector<int64_t>& steps) {
  std::string out;
  for (int64_t s : steps) out += (out.empty() ? "" : ", ") + std::to_string(s);
  return out;
}

// The step directory to evaluate: step `step` of ckpt_dir, or the one LATEST
// names (the newest committed one when there is no LATEST).
Result<std::string> ChooseCheckpoint(const std::string& ckpt_dir, std::optional<int64_t> step) {
  BATON_ASSIGN_OR_RETURN(const std::vector<int64_t> steps, ListCommittedSteps(ckpt_dir));
  if (steps.empty()) {
    std::error_code ec;
    return Status::NotFound("checkpoint directory " + ckpt_dir +
                            (std::filesystem::is_directory(ckpt_dir, ec) ? " holds no committed checkpoint"
                                                                         : " does not exist") +
                            " (baton train writes checkpoints every checkpoint.every steps and after the last "
                            "step, checkpoint.final)");
  }
  int64_t chosen = steps.back();
  if (step) {
    bool found = false;
    for (int64_t s : steps) found = found || s == *step;
    if (!found)
      return Status::NotFound(ckpt_dir + " has no committed checkpoint of step " + std::to_string(*step) +
                              "; the steps there: " + StepList(steps));
    chosen = *step;
  } else {
    BATON_ASSIGN_OR_RETURN(const std::optional<int64_t> latest, ReadLatest(ckpt_dir));
    if (latest) chosen = *latest;
  }
  return (std::filesystem::path(ckpt_dir) / StepDirName(chosen)).string();
}

// Sets every parameter of `model` (the tied table once) from the checkpoint.
Status LoadModelParams(const CheckpointReader& reader, const Model& model) {
  for (Param* p : model.params()) {
    if (!reader.Find(p->name))
      return Status::NotFound("checkpoint " + reader.dir() + " has no tensor " + p->name + ", which the model needs");
    BATON_ASSIGN_OR_RETURN(Tensor t, reader.Read(p->name));
    const bool scalar_as_one = p->value.shape().empty() && t.shape() == Shape{1};  // records have rank >= 1
    if (t.dtype() != p->value.dtype() || (t.shape() != p->value.shape() && !scalar_as_one))
      return Status::InvalidArgument("checkpoint " + reader.dir() + ": tensor " + p->name + " is " + t.Describe() +
                                     ", the model needs " + p->value.Describe());
    p->value.CopyFrom(t.Reshape(p->value.shape()));
    p->RefreshCompute();
  }
  return Status::OK();
}

struct Evaluation {
  int64_t step = 0;
  double val_loss = 0;
  std::string checkpoint;
  int64_t loss_targets = 0;
  std::string device;
};

Result<Evaluation> Evaluate(const RunConfig& config, const std::string& config_source, const std::string& run_dir,
                            std::optional<int64_t> step, const MpiWorld& world) {
  const TrainConfig& train = config.train();
  if (train.eval_batches() <= 0)
    return Status::InvalidArgument(config_source + ": train.eval_batches = " + std::to_string(train.eval_batches()) +
                                   ": the validation sample is empty (e.g. --set train.eval_batches=8)");
  const ModelSpec spec = ModelSpecFromConfig(config.model());

  const std::string ckpt_dir = config.checkpoint().dir().empty() ? run_dir + "/ckpt" : config.checkpoint().dir();
  BATON_ASSIGN_OR_RETURN(const std::string step_dir, ChooseCheckpoint(ckpt_dir, step));
  Result<CheckpointReader> reader = CheckpointReader::Open(step_dir);
  if (!reader.ok()) {
    const Result<std::vector<int64_t>> steps = ListCommittedSteps(ckpt_dir);
    return reader.status().WithContext("cannot evaluate " + step_dir +
                                       (steps.ok() ? " (the steps in " + ckpt_dir + ": " + StepList(steps.value()) +
                                                         "; choose one with --step)"
                                                   : std::string()));
  }
  BATON_RETURN_IF_ERROR(CheckCheckpointModel(*reader, spec).WithContext(config_source));

  // The validation sample exactly as RunTraining draws it.
  BATON_ASSIGN_OR_RETURN(TokenDataset val_data, TokenDataset::Open(config.data().val(), spec.vocab));
  BATON_ASSIGN_OR_RETURN(BatchSampler val_sampler, ObjectiveSampler(config, val_data, kValidationSeed));
  const std::vector<MicroBatch> val_batches =
      DrawMicroBatches(&val_sampler, train.eval_batches(), train.microbatch_size());

  ops::SetBackendThreads(train.threads());
  BATON_ASSIGN_OR_RETURN(const Device device, ComputeDevice(train, world));
  // The whole layer list in this process: the tied token table is one Param, as in a 1-stage run.
  Model model = Model::Build(spec, train.seed(), ComputeTypeFor(device), device);
  BATON_RETURN_IF_ERROR(LoadModelParams(*reader, model));
  TrainerOptions options;
  options.device = device;
  const Trainer trainer(&model, /*optimizer=*/nullptr, options);  // Evaluate only: no optimizer

  Evaluation e;
  e.step = reader->step();
  e.checkpoint = reader->dir();
  e.device = DeviceDescription(device);
  for (const MicroBatch& mb : val_batches) e.loss_targets += mb.LossTargets();
  const Topology& topo = reader->manifest().topology();
  std::fprintf(stderr, "baton eval: checkpoint %s (step %ld, written by %d stage(s) x %d replica(s)); config %s\n",
               e.checkpoint.c_str(), static_cast<long>(e.step), topo.stages(), topo.replicas(), config_source.c_str());
  std::fprintf(stderr, "baton eval: validation %d micro-batch(es) of %d, %ld target positions; objective %s; %s\n",
               train.eval_batches(), train.microbatch_size(), static_cast<long>(e.loss_targets),
               DescribeObjectiveData(config, val_sampler, val_data).c_str(), e.device.c_str());
  e.val_loss = trainer.Evaluate(val_batches);
  return e;
}

nlohmann::json EvaluationJson(const Evaluation& e, const RunConfig& config, const std::string& config_source) {
  return {{"step", e.step},
          {"val_loss", e.val_loss},
          {"checkpoint", e.checkpoint},
          {"config", config_source},
          {"val", config.data().val()},
          {"eval_batches", config.train().eval_batches()},
          {"microbatch_size", config.train().microbatch_size()},
          {"loss_targets", e.loss_targets},
          {"objective", ObjectiveConfig::Kind_Name(EffectiveObjective(config))},
          {"device", e.device}};
}

Status RunEval(const EvalArgs& args, const MpiWorld& world) {
  const std::string config_source = args.config.empty() ? args.run_dir + "/config.pbtxt" : args.config;
  std::error_code ec;
  if (args.config.empty() && !std::filesystem::exists(config_source, ec))
    return Status::NotFound(config_source + " does not exist: " + args.run_dir +
                            " is not a run directory of baton train (which writes its effective config there); "
                            "give the run's config with --config FILE");
  BATON_ASSIGN_OR_RETURN(const RunConfig config, LoadRunConfig(config_source, args.sets));
  BATON_ASSIGN_OR_RETURN(const Evaluation e, Evaluate(config, config_source, args.run_dir, args.step, world));
  std::printf("val_loss=%.17g\n", e.val_loss);
  std::fflush(stdout);
  const std::string json_path =
      args.json.empty() ? args.run_dir + "/eval_step_" + std::to_string(e.step) + ".json" : args.json;
  BATON_RETURN_IF_ERROR(WriteFileAtomically(json_path, EvaluationJson(e, config, config_source).dump(2) + "\n"));
  std::fprintf(stderr, "baton eval: wrote %s\n", json_path.c_str());
  return Status::OK();
}

}  // namespace

int RunEvalCommand(int argc, char** argv) {
  EvalArgs args;
  if (const int code = ParseArgs(argc, argv, &args); code >= 0) return code;
  MpiWorld& world = MpiWorld::Init(&argc, &argv);  // ComputeDevice asks it which GPU is this process's
  if (world.size() > 1) {
    if (world.rank() == 0)
      std::fprintf(stderr,
                   "baton eval: started as %d MPI ranks; it runs in one process (start it without mpirun): it "
                   "evaluates checkpoints written by any number of stages and replicas\n",
                   world.size());
    world.Finalize();
    return 2;
  }
  const Status s = RunEval(args, world);
  if (!s.ok()) std::fprintf(stderr, "baton eval: %s\n", s.ToString().c_str());
  world.Finalize();
  return s.ok() ? 0 : 1;
}

}  // namespace baton
