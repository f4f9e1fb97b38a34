// The directory protocol of checkpoints (DESIGN.md, "Checkpoint layout"):
//
//   ckpt_dir/step_00001000/     a committed checkpoint (manifest.pb, shards)
//   ckpt_dir/step_00001200.tmp/ being written, or left by a crash: never read
//   ckpt_dir/LATEST             text: the newest committed directory's name
//
// A step directory is written as step_X.tmp, every file fsynced, then renamed
// to step_X (and the rename made durable) before LATEST changes. Readers trust
// only committed names, so a crash at any moment leaves the previous
// committed checkpoint loadable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/status.h"

namespace baton {

inline constexpr char kLatestFileName[] = "LATEST";

std::string StepDirName(int64_t step);  // "step_00001000"
// The step of a committed directory name ("step_00001000" -> 1000); nullopt for
// anything else (".tmp" directories included).
std::optional<int64_t> StepOfDirName(const std::string& name);

// Steps of the committed step directories in ckpt_dir, ascending (empty when
// ckpt_dir does not exist).
Result<std::vector<int64_t>> ListCommittedSteps(const std::string& ckpt_dir);

// The step LATEST names; nullopt when there is no LATEST file.
Result<std::optional<int64_t>> ReadLatest(const std::string& ckpt_dir);

// Creates ckpt_dir (and parents) and checks that files can be created in it,
// so that a run learns at start, not hours later, that it cannot checkpoint.
Status PrepareCheckpointDir(const std::string& ckpt_dir);

// Creates an empty ckpt_dir/step_X.tmp, first removing any leftover of that
// name and any other *.tmp / *.replaced directory a crashed writer left.
Result<std::string> BeginStepDir(const std::string& ckpt_dir, int64_t step);

// Commits step_X.tmp: fsyncs it, renames it to step_X (moving aside a stale
// committed step_X, e.g. one found damaged and fallen back from), makes the
// rename durable, then points LATEST at it.
Status CommitStepDir(const std::string& ckpt_dir, int64_t step);

// Removes a step_X.tmp that will not be committed (a failed write).
void AbandonStepDir(const std::string& ckpt_dir, int64_t step);

// Deletes the oldest committed step directories so that `keep` remain,
// never the one named `protect_dir` (the checkpoint the run resumed from) nor
// the one LATEST names.
Status PruneCheckpoints(const std::string& ckpt_dir, int keep, const std::string& protect_dir);

}  // namespace baton
