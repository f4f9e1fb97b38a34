// The checkpoints of one training run: where they go, resuming from one
// (--resume auto | PATH, with fallback past a damaged checkpoint), and writing
// one at a step boundary. Every method is collective over the whole job.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "checkpoint/checkpoint_writer.h"
#include "data/batch_sampler.h"
#include "layers/model_spec.h"
#include "pipeline/pipeline_trainer.h"
#include "proto/config.pb.h"
#include "runtime/transport.h"

namespace baton {

struct ResumedRun {
  std::string dir;           // the step directory loaded
  int64_t step = 0;          // training continues at step + 1
  SamplerCursor cursor;      // the training data stream's position after that step
  uint64_t seed = 0;         // the data seed the run was started with
  int64_t tokens_seen = 0;
  double seconds = 0;        // loading took, the ranks' agreement included
  double read_seconds = 0;   // this rank's reading and verifying
  int64_t bytes_read = 0;    // by this rank
};

// What the manifest records about the writing run, besides tensors.
struct RunDescription {
  RunConfig config;
  std::string layout;    // StageLayout::Describe
  std::string schedule;  // ScheduleKindTitle
};

class RunCheckpoints {
 public:
  RunCheckpoints(RunDescription run, std::string ckpt_dir, int stage, int replica, Transport* world);

  const std::string& dir() const { return ckpt_dir_; }

  // Rank 0 creates the checkpoint directory and checks it is writable.
  Status Prepare();

  // `resume`: "" (start fresh), "auto" (the newest usable committed checkpoint in
  // dir(), falling back past damaged ones and saying so; nothing there: fresh) or
  // a step directory (exactly that one). Loads the trainer. Refuses, changing
  // nothing, a checkpoint of another model or a newer format.
  Result<std::optional<ResumedRun>> Resume(const std::string& resume, const ModelSpec& spec, PipelineTrainer* trainer);

  // Writes a checkpoint of the state after `step`, logs its size and rates.
  Result<CheckpointWriteStats> Save(int64_t step, const PipelineTrainer& trainer, const SamplerCursor& cursor,
                                    double last_lr, int64_t tokens_seen);

  // The last checkpoint write's duration, or an estimate before the first.
  double ExpectedSaveSeconds(const PipelineTrainer& trainer) const;

 private:
  // One candidate: loads it on every rank; the verdict is agreed. Damage (a
  // checksum, a missing or truncated shard) is kCorruption; a refusal is any
  // other error.
  Result<ResumedRun> TryResume(const std::string& step_dir, const ModelSpec& spec, PipelineTrainer* trainer);

  RunDescription run_;
  std::string ckpt_dir_;
  int stage_, replica_;
  Transport* world_;
  std::string resumed_from_;  // never pruned
  double last_save_seconds_ = -1;
  mutable int64_t estimated_bytes_ = -1;  // this rank's checkpoint size, before the first save
};

}  // namespace baton
