#include "checkpoint/checkpoint_writer.h"

#include <array>
#include <ctime>

#include <google/protobuf/text_format.h>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/manifest.h"
#include "runtime/atomic_file.h"
#include "runtime/log.h"
#include "runtime/timer.h"

namespace baton {
namespace {

// One row of numbers from every rank (the agreement step): rows[r] is rank r's.
Result<std::vector<std::array<double, 3>>> GatherRows(Transport* world, std::array<double, 3> mine) {
  BATON_ASSIGN_OR_RETURN(std::vector<double> all, AllGatherValues(world, {mine[0], mine[1], mine[2]}));
  std::vector<std::array<double, 3>> rows(all.size() / 3);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t i = 0; i < 3; ++i) rows[r][i] = all[3 * r + i];
  return rows;
}

// The first rank whose row says it failed, or -1.
int FirstFailed(const std::vector<std::array<double, 3>>& rows) {
  for (size_t r = 0; r < rows.size(); ++r)
    if (rows[r][0] != 0) return static_cast<int>(r);
  return -1;
}

Status Failed(int64_t step, int failed_rank, int my_rank, const Status& mine) {
  const std::string head = "checkpoint of step " + std::to_string(step) + " not written";
  if (failed_rank == my_rank) return mine.WithContext(head);
  return Status::IOError(head + ": rank " + std::to_string(failed_rank) + " failed (its message says why)");
}

}  // namespace

Result<CheckpointWriteStats> WriteCheckpoint(const CheckpointWrite& w, Transport* world) {
  Timer total;
  const int rank = world ? world->rank() : 0;
  CheckpointWriteStats stats;

  Status begun;
  std::string tmp_dir = w.ckpt_dir + "/" + StepDirName(w.step) + ".tmp";
  if (rank == 0) {
    Result<std::string> dir = BeginStepDir(w.ckpt_dir, w.step);
    begun = dir.status();
  }
  BATON_ASSIGN_OR_RETURN(auto rows, GatherRows(world, {begun.ok() ? 0.0 : 1.0, 0, 0}));
  if (int bad = FirstFailed(rows); bad >= 0) return Failed(w.step, bad, rank, begun);

  Timer shard_timer;
  Status written = WriteTensorRecords(tmp_dir + "/" + w.shard_file, w.records);
  stats.rank_seconds = shard_timer.Seconds();
  for (const TensorRecord& r : w.records) stats.rank_bytes += static_cast<int64_t>(r.data.nbytes());
  BATON_ASSIGN_OR_RETURN(rows, GatherRows(world, {written.ok() ? 0.0 : 1.0, static_cast<double>(stats.rank_bytes),
                                                  stats.rank_seconds}));
  for (size_t r = 0; r < rows.size(); ++r) {
    stats.total_bytes += static_cast<int64_t>(rows[r][1]);
    stats.slowest_rank_seconds = std::max(stats.slowest_rank_seconds, rows[r][2]);
    if (rows[r][1] <= 0 || rows[r][2] <= 0) continue;  // a rank that owns no tensor has no rate
    const double gbps = rows[r][1] / rows[r][2] / 1e9;
    stats.min_rank_gbps = stats.min_rank_gbps == 0 ? gbps : std::min(stats.min_rank_gbps, gbps);
    stats.max_rank_gbps = std::max(stats.max_rank_gbps, gbps);
  }
  if (int bad = FirstFailed(rows); bad >= 0) {
    if (rank == 0) AbandonStepDir(w.ckpt_dir, w.step);
    return Failed(w.step, bad, rank, written);
  }

  Status committed;
  if (rank == 0) {
    committed = [&]() -> Status {
      CheckpointManifest manifest = w.manifest;
      manifest.set_format_version(kCheckpointFormatVersion);
      manifest.set_step(w.step);
      manifest.set_unix_time(static_cast<int64_t>(std::time(nullptr)));
      manifest.clear_tensors();
      if (manifest.topology().shard_files().empty()) manifest.mutable_topology()->add_shard_files(w.shard_file);
      for (const std::string& file : manifest.topology().shard_files())
        BATON_RETURN_IF_ERROR(AddShardToIndex(tmp_dir, file, &manifest));
      std::string config_text;
      google::protobuf::TextFormat::PrintToString(manifest.config(), &config_text);
      BATON_RETURN_IF_ERROR(WriteFileAtomically(tmp_dir + "/config.pbtxt", config_text));  // for people; manifest.pb is what loads
      BATON_RETURN_IF_ERROR(WriteManifest(tmp_dir, manifest));
      return CommitStepDir(w.ckpt_dir, w.step);
    }();
    if (!committed.ok()) AbandonStepDir(w.ckpt_dir, w.step);
  }
  BATON_ASSIGN_OR_RETURN(rows, GatherRows(world, {committed.ok() ? 0.0 : 1.0, 0, 0}));
  if (int bad = FirstFailed(rows); bad >= 0) return Failed(w.step, bad, rank, committed);
  if (rank == 0) {
    // The checkpoint is committed; failing to delete old ones is worth a warning, not a failed save.
    Status pruned = PruneCheckpoints(w.ckpt_dir, w.keep, w.protect_dir);
    if (!pruned.ok()) LogWarning("warning: %s", pruned.ToString().c_str());
  }
  stats.step_dir = w.ckpt_dir + "/" + StepDirName(w.step);
  stats.total_seconds = total.Seconds();
  return stats;
}

}  // namespace baton
