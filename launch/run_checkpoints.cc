#include "launch/run_checkpoints.h"

#include <algorithm>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/checkpoint_reader.h"
#include "launch/trainer_checkpoint.h"
#include "runtime/log.h"
#include "runtime/timer.h"

namespace baton {
namespace {

std::string ShardFileName(int stage, int replica) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "shard-p%02d-d%02d.bin", stage, replica);
  return buf;
}

double GBPerSecond(int64_t bytes, double seconds) { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0; }

// The lowest rank whose value is non-zero, or -1.
int FirstNonZero(const std::vector<double>& values) {
  for (size_t r = 0; r < values.size(); ++r)
    if (values[r] != 0) return static_cast<int>(r);
  return -1;
}

enum Verdict { kLoaded = 0, kDamaged = 1, kRefused = 2 };

}  // namespace

RunCheckpoints::RunCheckpoints(RunDescription run, std::string ckpt_dir, int stage, int replica, Transport* world)
    : run_(std::move(run)), ckpt_dir_(std::move(ckpt_dir)), stage_(stage), replica_(replica), world_(world) {}

Status RunCheckpoints::Prepare() {
  const int rank = world_ ? world_->rank() : 0;
  Status mine = rank == 0 ? PrepareCheckpointDir(ckpt_dir_) : Status::OK();
  BATON_ASSIGN_OR_RETURN(std::vector<double> failed, AllGatherValues(world_, {mine.ok() ? 0.0 : 1.0}));
  if (FirstNonZero(failed) < 0) return Status::OK();
  return rank == 0 ? mine : Status::IOError("rank 0 cannot use the checkpoint directory " + ckpt_dir_);
}

Result<ResumedRun> RunCheckpoints::TryResume(const std::string& step_dir, const ModelSpec& spec,
                                             PipelineTrainer* trainer) {
  Timer timer;
  ResumedRun resumed;
  int64_t bytes_read = 0;
  double read_seconds = 0;
  Status mine = [&]() -> Status {
    BATON_ASSIGN_OR_RETURN(CheckpointReader reader, CheckpointReader::Open(step_dir));
    BATON_RETURN_IF_ERROR(CheckCheckpointModel(reader, spec));
    BATON_RETURN_IF_ERROR(LoadTrainerCheckpoint(reader, trainer));
    const CheckpointManifest& m = reader.manifest();
    resumed.dir = reader.dir();
    resumed.step = m.step();
    resumed.cursor = SamplerCursor{m.data_cursor().epoch(), m.data_cursor().position()};
    resumed.seed = m.rng().seed();
    resumed.tokens_seen = m.tokens_seen();
    bytes_read = reader.bytes_read();
    read_seconds = timer.Seconds();  // this rank's reading, before waiting for the others
    return Status::OK();
  }();
  const Verdict verdict = mine.ok() ? kLoaded : mine.code() == Status::Code::kCorruption ? kDamaged : kRefused;
  BATON_ASSIGN_OR_RETURN(std::vector<double> verdicts, AllGatherValues(world_, {static_cast<double>(verdict)}));
  const int rank = world_ ? world_->rank() : 0;
  int refused = -1, damaged = -1;
  for (size_t r = 0; r < verdicts.size(); ++r) {
    if (verdicts[r] == kRefused && refused < 0) refused = static_cast<int>(r);
    if (verdicts[r] == kDamaged && damaged < 0) damaged = static_cast<int>(r);
  }
  if (refused >= 0)
    return refused == rank ? mine
                           : Status::InvalidArgument("rank " + std::to_string(refused) + " refused checkpoint " +
                                                     step_dir + " (its message says why)");
  if (damaged >= 0) {
    if (!mine.ok()) LogEveryRank("%s", mine.ToString().c_str());
    return Status::Corruption("checkpoint " + step_dir + " is damaged (rank " + std::to_string(damaged) +
                              " found it; its message says where)");
  }
  resumed.seconds = timer.Seconds();
  resumed.read_seconds = read_seconds;
  resumed.bytes_read = bytes_read;
  return resumed;
}

Result<std::optional<ResumedRun>> RunCheckpoints::Resume(const std::string& resume, const ModelSpec& spec,
                                                         PipelineTrainer* trainer) {
  if (resume.empty()) return std::optional<ResumedRun>();
  std::vector<std::string> candidates;
  if (resume == "auto") {
    BATON_ASSIGN_OR_RETURN(std::vector<int64_t> steps, ListCommittedSteps(ckpt_dir_));
    Result<std::optional<int64_t>> latest = ReadLatest(ckpt_dir_);
    if (!latest.ok()) LogWarning("warning: %s; trying the newest committed checkpoint", latest.status().ToString().c_str());
    // LATEST first; a committed step newer than LATEST is ignored (LATEST moves only
    // after a commit, so a newer one is a directory left from before a fallback).
    int64_t newest = steps.empty() ? -1 : steps.back();
    if (latest.ok() && latest->has_value() && std::count(steps.begin(), steps.end(), **latest)) newest = **latest;
    for (auto it = steps.rbegin(); it != steps.rend(); ++it)
      if (*it <= newest) candidates.push_back(ckpt_dir_ + "/" + StepDirName(*it));
    if (candidates.empty()) {
      LogInfo("baton: no checkpoint in %s; starting from scratch", ckpt_dir_.c_str());
      return std::optional<ResumedRun>();
    }
  } else {
    candidates.push_back(resume);
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    Result<ResumedRun> r = TryResume(candidates[i], spec, trainer);
    if (r.ok()) {
      resumed_from_ = r->dir;
      // The run goes on with the checkpoint's data order; later checkpoints must say so.
      run_.config.mutable_train()->set_seed(r->seed);
      LogInfo("baton: resumed from %s (step %ld) in %.2f s", r->dir.c_str(), static_cast<long>(r->step), r->seconds);
      LogEveryRank("read %.1f MB of checkpoint at %.2f GB/s", static_cast<double>(r->bytes_read) / 1e6,
                   GBPerSecond(r->bytes_read, r->read_seconds));
      return std::optional<ResumedRun>(*std::move(r));
    }
    if (r.status().code() != Status::Code::kCorruption || resume != "auto") return r.status();
    if (i + 1 < candidates.size())
      LogInfo("baton: %s; falling back to the previous committed checkpoint %s", r.status().message().c_str(),
              candidates[i + 1].c_str());
  }
  return Status::Corruption("no usable checkpoint in " + ckpt_dir_ + ": all " + std::to_string(candidates.size()) +
                            " committed checkpoints are damaged (nothing was changed; see the messages above)");
}

Result<CheckpointWriteStats> RunCheckpoints::Save(int64_t step, const PipelineTrainer& trainer,
                                                  const SamplerCursor& cursor, double last_lr, int64_t tokens_seen) {
  const ParallelConfig& parallel = run_.config.parallel();
  CheckpointWrite w;
  w.ckpt_dir = ckpt_dir_;
  w.step = step;
  w.shard_file = ShardFileName(stage_, replica_);
  w.records = TrainerCheckpointRecords(trainer);
  w.keep = run_.config.checkpoint().keep();
  w.protect_dir = resumed_from_;
  if (!world_ || world_->rank() == 0) {
    CheckpointManifest& m = w.manifest;
    *m.mutable_config() = run_.config;
    Topology* t = m.mutable_topology();
    t->set_stages(parallel.stages());
    t->set_replicas(parallel.replicas());
    t->set_virtual_stages(parallel.virtual_stages());
    t->set_layout(run_.layout);
    t->set_schedule(run_.schedule);
    for (int d = 0; d < parallel.replicas(); ++d)  // world rank order: replica x stages + stage
      for (int p = 0; p < parallel.stages(); ++p) t->add_shard_files(ShardFileName(p, d));
    m.mutable_data_cursor()->set_epoch(cursor.epoch);
    m.mutable_data_cursor()->set_position(cursor.position);
    const OptimConfig& o = run_.config.optim();
    LrScheduleState* lr = m.mutable_lr_schedule();
    lr->set_kind(OptimConfig::LrSchedule_Name(o.lr_schedule()));
    lr->set_lr(o.lr());
    lr->set_warmup_steps(o.warmup_steps());
    lr->set_min_lr_ratio(o.min_lr_ratio());
    lr->set_total_steps(run_.config.train().steps());
    lr->set_last_rate(last_lr);
    m.mutable_rng()->set_seed(run_.config.train().seed());
    m.mutable_rng()->set_step(step);
    m.set_has_optimizer_state(true);
    m.set_tokens_seen(tokens_seen);
    m.set_written_by("baton train");
  }
  BATON_ASSIGN_OR_RETURN(CheckpointWriteStats s, WriteCheckpoint(w, world_));
  last_save_seconds_ = s.total_seconds;
  LogInfo("checkpoint %s: %.1f MB in %.2f s; shard writes %.2f-%.2f GB/s per rank (slowest %.2f s)",
          s.step_dir.c_str(), static_cast<double>(s.total_bytes) / 1e6, s.total_seconds, s.min_rank_gbps,
          s.max_rank_gbps, s.slowest_rank_seconds);
  return s;
}

double RunCheckpoints::ExpectedSaveSeconds(const PipelineTrainer& trainer) const {
  if (last_save_seconds_ >= 0) return last_save_seconds_;
  if (estimated_bytes_ < 0) {  // asked every step until the first save: count once
    estimated_bytes_ = 0;
    for (const TensorRecord& r : TrainerCheckpointRecords(trainer)) estimated_bytes_ += static_cast<int64_t>(r.data.nbytes());
  }
  return static_cast<double>(estimated_bytes_) / 200e6;  // a cautious guess of a shared file system's rate
}

}  // namespace baton
