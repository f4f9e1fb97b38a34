#include "launch/train_run.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "data/batch_sampler.h"
#include "data/token_dataset.h"
#include "launch/compute_device.h"
#include "launch/config_effective.h"
#include "launch/metrics_log.h"
#include "launch/objective_data.h"
#include "launch/rank_groups.h"
#include "launch/run_checkpoints.h"
#include "launch/run_spec.h"
#include "launch/stop_request.h"
#include "layers/model.h"
#include "layers/ops.h"
#include "optim/adafactor.h"
#include "pipeline/pipeline_trainer.h"
#include "pipeline/schedule.h"
#include "pipeline/schedule_verifier.h"
#include "pipeline/stage_layout.h"
#include "runtime/mpi_transport.h"
#include "runtime/atomic_file.h"
#include "runtime/log.h"
#include "runtime/timer.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

// A fresh run needs a run directory without a run in it; a resumed one (or
// --resume auto) continues the one there.
Status PrepareRunDir(const std::string& dir, bool continuing) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create run directory " + dir + ": " + ec.message());
  if (continuing) return Status::OK();
  if (fs::exists(fs::path(dir) / "metrics.jsonl", ec) || ec)
    return ec ? Status::IOError("cannot read run directory " + dir + ": " + ec.message())
              : Status::InvalidArgument("run directory " + dir +
                                        " already holds a run (metrics.jsonl); continue it with --resume auto, or "
                                        "choose a new --run-dir");
  return Status::OK();
}

std::string HumanCount(double x) {
  char buf[32];
  if (x >= 1e9) std::snprintf(buf, sizeof(buf), "%.2fG", x / 1e9);
  else if (x >= 1e6) std::snprintf(buf, sizeof(buf), "%.2fM", x / 1e6);
  else if (x >= 1e3) std::snprintf(buf, sizeof(buf), "%.1fk", x / 1e3);
  else std::snprintf(buf, sizeof(buf), "%.0f", x);
  return buf;
}

std::string Duration(double seconds) {
  char buf[32];
  const long s = std::lround(seconds);
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%ldh%02ldm", s / 3600, s % 3600 / 60);
  else std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
  return buf;
}

// Testing aid: BATON_FAIL_AT=RANK:STEP makes that rank fail at that step, to
// show that one failing rank brings the whole job down.
Status InjectedFailure(int rank, int64_t step) {
  const char* spec = std::getenv("BATON_FAIL_AT");
  if (!spec) return Status::OK();
  int fail_rank = -1;
  long long fail_step = -1;
  if (std::sscanf(spec, "%d:%lld", &fail_rank, &fail_step) == 2 && fail_rank == rank && fail_step == step)
    return Status::Internal("injected failure at step " + std::to_string(step) + " (BATON_FAIL_AT=" + spec + ")");
  return Status::OK();
}

}  // namespace

Status RunTraining(const TrainRunOptions& options, const MpiWorld& world) {
  const RunConfig& config = options.config;
  const TrainConfig& train = config.train();
  const ParallelConfig& parallel = config.parallel();
  const int64_t world_expected = int64_t{parallel.stages()} * parallel.replicas();
  if (world.size() != world_expected) {
    return Status::InvalidArgument(options.config_source + ": parallel.stages x parallel.replicas = " +
                                   std::to_string(world_expected) + " but the job has " +
                                   std::to_string(world.size()) + " ranks (start it with mpirun -np " +
                                   std::to_string(world_expected) + ")");
  }
  const ModelSpec spec = ModelSpecFromConfig(config.model());
  const AdafactorOptions adafactor = AdafactorOptionsFromConfig(config.optim());
  const LrScheduleOptions lr = LrScheduleFromConfig(config.optim(), train.steps());
  BATON_RETURN_IF_ERROR(ValidateAdafactorOptions(adafactor).WithContext(options.config_source));
  BATON_RETURN_IF_ERROR(ValidateLrSchedule(lr).WithContext(options.config_source));
  BATON_ASSIGN_OR_RETURN(StageLayout layout, LayoutFromConfig(config, spec, options.config_source));
  BATON_ASSIGN_OR_RETURN(ScheduleKind kind, ParseScheduleKind(ParallelConfig::Schedule_Name(parallel.schedule())));
  Result<PipelineSchedule> schedule = BuildSchedule(kind, parallel.stages(), train.microbatches(), parallel.virtual_stages());
  if (!schedule.ok()) return schedule.status().WithContext(options.config_source);
  Result<ScheduleReport> report = VerifySchedule(*schedule, ScheduleCosts{}, parallel.max_inflight_microbatches());
  if (!report.ok()) return report.status().WithContext(options.config_source + ": the pipeline schedule");

  BATON_ASSIGN_OR_RETURN(TokenDataset train_data, TokenDataset::Open(config.data().train(), spec.vocab));
  BATON_ASSIGN_OR_RETURN(BatchSampler train_sampler, ObjectiveSampler(config, train_data, train.seed()));
  std::vector<MicroBatch> val_batches;  // a fixed sample, drawn once: every evaluation sees the same tokens
  uint64_t val_tokens = 0;
  if (train.eval_batches() > 0) {
    BATON_ASSIGN_OR_RETURN(TokenDataset val_data, TokenDataset::Open(config.data().val(), spec.vocab));
    BATON_ASSIGN_OR_RETURN(BatchSampler val_sampler, ObjectiveSampler(config, val_data, kValidationSeed));
    val_batches = DrawMicroBatches(&val_sampler, train.eval_batches(), train.microbatch_size());
    val_tokens = val_data.total_tokens();
  }

  // World rank = replica x stages + stage: the stages of one replica are neighbours.
  ops::SetBackendThreads(train.threads());
  BATON_ASSIGN_OR_RETURN(const Device device, ComputeDevice(train, world));
  const int stage = world.rank() % parallel.stages(), replica = world.rank() / parallel.stages();
  BATON_ASSIGN_OR_RETURN(RankGroups groups, ConnectRanks(device, parallel.stages(), parallel.comm_timeout_seconds()));
  Transport* world_group = groups.world.get();
  Transport* pipe = groups.pipe.get();
  BATON_RETURN_IF_ERROR(CheckScheduleTags(*schedule, *pipe).WithContext(options.config_source));
  if (!pipe->matches_by_tag())  // NCCL: messages match in order, one group after another
    BATON_RETURN_IF_ERROR(CheckStreamOrderedExchange(*schedule).WithContext(options.config_source + ": the pipeline schedule"));

  PipelineTrainer trainer(spec, train.seed(), layout, *schedule, adafactor,
                          TrainerOptions{lr, config.optim().clip_grad_norm(), RecomputeFromConfig(parallel, stage), device},
                          pipe, groups.replicas.get());

  // Resume before touching the run directory: a refused checkpoint changes nothing.
  const std::string ckpt_dir = config.checkpoint().dir().empty() ? options.run_dir + "/ckpt" : config.checkpoint().dir();
  RunCheckpoints checkpoints({config, layout.Describe(spec), ScheduleKindTitle(kind)}, ckpt_dir, stage, replica,
                             world_group);
  std::optional<ResumedRun> resumed;
  {
    CommTimeoutPause pause;  // reading a large checkpoint may take long
    BATON_ASSIGN_OR_RETURN(resumed, checkpoints.Resume(options.resume, spec, &trainer));
  }
  int64_t first_step = 1, tokens_seen = 0;
  if (resumed) {
    if (resumed->seed != train.seed()) {
      LogInfo("baton: the checkpoint's run used train.seed = %llu; its data order continues (train.seed = %llu is "
              "not used)", static_cast<unsigned long long>(resumed->seed), static_cast<unsigned long long>(train.seed()));
      BATON_ASSIGN_OR_RETURN(train_sampler, ObjectiveSampler(config, train_data, resumed->seed));
    }
    train_sampler.set_cursor(resumed->cursor);
    first_step = resumed->step + 1;
    tokens_seen = resumed->tokens_seen;
  }

  // Everything the user gave has been checked; only now touch the run directory (rank 0 writes it).
  const bool writer = world.rank() == 0;
  if (writer) {
    BATON_RETURN_IF_ERROR(PrepareRunDir(options.run_dir, resumed.has_value() || options.resume == "auto"));
    BATON_RETURN_IF_ERROR(WriteFileAtomically(options.run_dir + "/config.pbtxt", EffectiveConfigText(config)));
  }
  BATON_RETURN_IF_ERROR(checkpoints.Prepare());
  StopAgreement stop(world_group, 60.0 * config.checkpoint().wall_time_minutes());

  const int64_t tokens_per_step =
      static_cast<int64_t>(train.seq_len()) * train.microbatch_size() * train.microbatches() * parallel.replicas();
  LogInfo("baton: %s, %ld layers, hidden %ld, %ld heads, %s parameters", spec.family.c_str(),
          static_cast<long>(spec.layers), static_cast<long>(spec.hidden), static_cast<long>(spec.heads),
          HumanCount(static_cast<double>(spec.ParameterCount())).c_str());
  LogInfo("baton: %d rank(s) = %d stage(s) x %d replica(s); layout %s; %s, %d micro-batches, bubble %.1f%%",
          world.size(), parallel.stages(), parallel.replicas(), layout.Describe(spec).c_str(),
          ScheduleKindTitle(kind), train.microbatches(), 100.0 * report->bubble_fraction);
  LogInfo("baton: %ld steps of %ld tokens (%d replica(s) x %d x %d sequences of %d); train data %s tokens, "
          "validation %s tokens",
          static_cast<long>(train.steps()), static_cast<long>(tokens_per_step), parallel.replicas(),
          train.microbatches(), train.microbatch_size(), train.seq_len(), HumanCount(static_cast<double>(train_data.total_tokens())).c_str(),
          HumanCount(static_cast<double>(val_tokens)).c_str());
  LogInfo("baton: objective %s", DescribeObjectiveData(config, train_sampler, train_data).c_str());
  LogInfo("baton: %s; lr schedule %s, lr %g", DeviceDescription(device).c_str(), LrScheduleKindName(lr.kind), lr.lr);
  if (kind == ScheduleKind::kZeroBubbleH1 && RecomputeFromConfig(parallel, stage) == RecomputePolicy::kFull) {
    // ChunkRunner re-runs the forward in B and must keep the internals for the deferred W.
    LogEveryRank("note: full recompute under ZB-H1 keeps each layer's recomputed internals from B until W; "
                 "activation memory is close to selective recompute");
  }
  // The pid lets a user (or a test) signal one rank: kill -USR1 <pid> stops the run with a checkpoint.
  LogEveryRank("stage %d of %d, replica %d of %d (pid %ld, %s): layers [%s]; recompute %s; AdaFactor state %s bytes on "
               "this rank (Adam would need %s for the stage)",
               stage, parallel.stages(), replica, parallel.replicas(), static_cast<long>(getpid()),
               device.is_cpu() ? "CPU" : ("GPU " + CudaDeviceDescription()).c_str(),
               layout.DescribeRank(spec, stage).c_str(),
               RecomputePolicyName(RecomputeFromConfig(parallel, stage)),
               HumanCount(static_cast<double>(trainer.OptimizerStateBytes())).c_str(),
               HumanCount(static_cast<double>(AdamStateBytes(trainer.params()))).c_str());

  std::unique_ptr<MetricsLog> metrics;
  if (writer) {
    const std::string path = options.run_dir + "/metrics.jsonl";
    BATON_ASSIGN_OR_RETURN(MetricsLog log, resumed ? MetricsLog::Continue(path, resumed->step) : MetricsLog::Create(path));
    metrics = std::make_unique<MetricsLog>(std::move(log));
  }
  auto record = [&](const nlohmann::json& line) { return metrics ? metrics->Append(line) : Status::OK(); };
  auto evaluate = [&](int64_t step) -> Status {
    if (val_batches.empty()) return Status::OK();
    BATON_ASSIGN_OR_RETURN(double val_loss, trainer.Evaluate(val_batches));
    LogInfo("step %6ld | val_loss %.4f", static_cast<long>(step), val_loss);
    return record({{"step", step}, {"val_loss", val_loss}});
  };

  // A checkpoint of the state after `step`; its stats go to metrics.jsonl.
  auto save = [&](int64_t step, double lr_used) -> Status {
    CommTimeoutPause pause;  // ranks wait for the slowest writer, however slow the file system
    BATON_ASSIGN_OR_RETURN(CheckpointWriteStats s, checkpoints.Save(step, trainer, train_sampler.cursor(), lr_used, tokens_seen));
    return record({{"step", step},
                   {"checkpoint", s.step_dir},
                   {"checkpoint_bytes", s.total_bytes},
                   {"checkpoint_s", s.total_seconds},
                   {"checkpoint_rank_gbps_min", s.min_rank_gbps},
                   {"checkpoint_rank_gbps_max", s.max_rank_gbps}});
  };

  if (!resumed || resumed->step == 0) BATON_RETURN_IF_ERROR(evaluate(0));  // step 0: imported weights
  // Model FLOPs of a training step per input token: forward + backward (3 x the forward's
  // matrix products), recomputation not counted: what the model costs, not the schedule.
  const double flops_per_token =
      3.0 * (static_cast<double>(spec.layers) * spec.BlockForwardFlopsPerToken(train.seq_len()) +
             spec.HeadForwardFlopsPerToken());
  Timer run_timer;
  int64_t peak_activation_bytes = 0;
  MemoryStats peak_memory;
  for (int64_t step = first_step; step <= train.steps(); ++step) {
    BATON_RETURN_IF_ERROR(InjectedFailure(world.rank(), step));
    // Every rank draws the whole global batch (cheap, and the same on every rank);
    // replica r trains on micro-batches [r M, (r+1) M) of it.
    std::vector<MicroBatch> global =
        DrawMicroBatches(&train_sampler, train.microbatches() * parallel.replicas(), train.microbatch_size());
    std::vector<MicroBatch> mine(global.begin() + replica * train.microbatches(),
                                 global.begin() + (replica + 1) * train.microbatches());
    BATON_ASSIGN_OR_RETURN(StepMetrics m, trainer.Step(step, std::move(mine)));
    tokens_seen += m.tokens;
    peak_activation_bytes = std::max(peak_activation_bytes, m.peak_activation_bytes);
    if (m.memory.peak_bytes >= peak_memory.peak_bytes) peak_memory = m.memory;
    const double tokens_per_s = static_cast<double>(m.tokens) / m.seconds;  // m.tokens counts every replica
    BATON_RETURN_IF_ERROR(record({{"step", step},
                                  {"loss", m.loss},
                                  {"lr", m.lr},
                                  {"grad_norm", m.grad_norm},
                                  {"tokens", m.tokens},
                                  {"loss_targets", m.loss_targets},
                                  {"flops", flops_per_token * static_cast<double>(m.tokens)},
                                  {"ms", m.seconds * 1e3},
                                  {"tokens_per_s", tokens_per_s},
                                  {"activation_bytes", m.peak_activation_bytes},
                                  {"peak_bytes", m.memory.peak_bytes}}));
    const int64_t done_here = step - first_step + 1;
    if (step % train.log_every() == 0 || step == train.steps()) {
      const double eta = run_timer.Seconds() / static_cast<double>(done_here) * static_cast<double>(train.steps() - step);
      LogInfo("step %6ld/%ld | loss %.4f | lr %.2e | norm %.3f | %5.0f ms | %s tok/s | eta %s", static_cast<long>(step),
              static_cast<long>(train.steps()), m.loss, m.lr, m.grad_norm, m.seconds * 1e3,
              HumanCount(tokens_per_s).c_str(), Duration(eta).c_str());
    }
    const bool last = step == train.steps();
    if (last || (train.eval_every() > 0 && step % train.eval_every() == 0)) BATON_RETURN_IF_ERROR(evaluate(step));

    // Every rank learns at this same boundary whether any rank was signalled or the budget is ending.
    BATON_ASSIGN_OR_RETURN(std::string stop_reason,
                           stop.Check(m.seconds, checkpoints.ExpectedSaveSeconds(trainer)));
    const int64_t every = config.checkpoint().every();
    const bool periodic = every > 0 && step % every == 0;
    if (!stop_reason.empty() && !last) {
      BATON_RETURN_IF_ERROR(save(step, m.lr).WithContext("stopping on " + stop_reason));
      LogInfo("baton: stopped after step %ld on %s; checkpoint written. Continue with --resume auto",
              static_cast<long>(step), stop_reason.c_str());
      return Status::OK();
    }
    if (periodic || (last && (config.checkpoint().final() || !stop_reason.empty()))) {
      Status saved = save(step, m.lr);
      if (last && !saved.ok()) return saved;
      // A failed periodic checkpoint leaves the previous one as LATEST; training goes on and the next one retries.
      if (!saved.ok()) LogError("error: %s; training continues, the last good checkpoint is kept", saved.ToString().c_str());
    }
  }
  LogEveryRank("stage %d, replica %d: peak activation memory %s bytes per step (recompute %s); %s memory %s", stage,
               replica, HumanCount(static_cast<double>(peak_activation_bytes)).c_str(),
               RecomputePolicyName(RecomputeFromConfig(parallel, stage)), device.ToString().c_str(),
               DescribeMemory(peak_memory).c_str());
  LogInfo("baton: done in %s; metrics in %s/metrics.jsonl", Duration(run_timer.Seconds()).c_str(),
          options.run_dir.c_str());
  return Status::OK();
}

}  // namespace baton
