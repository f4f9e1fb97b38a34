// Writing one checkpoint from every rank of a job (DESIGN.md, "Checkpoint
// layout"), all or nothing:
//   1. rank 0 creates ckpt_dir/step_X.tmp;
//   2. every rank writes its shard file of tensor records into it (each file
//      fsynced and renamed into place by WriteFileAtomically);
//   3. the ranks agree that every shard is durable (a collective: one failed
//      rank fails the checkpoint on all, and the .tmp directory is removed);
//   4. rank 0 indexes the shards, writes manifest.pb, renames step_X.tmp to
//      step_X, points LATEST at it and prunes old checkpoints.
// A crash at any moment leaves the previous committed checkpoint as LATEST.
#pragma once

#include <string>
#include <vector>

#include "checkpoint/tensor_records.h"
#include "proto/checkpoint.pb.h"
#include "runtime/status.h"
#include "runtime/transport.h"

namespace baton {

struct CheckpointWrite {
  std::string ckpt_dir;
  int64_t step = 0;
  std::string shard_file;             // this rank's file name, e.g. "shard-p01-d00.bin"
  std::vector<TensorRecord> records;  // the tensors this rank owns (may be empty)
  // Rank 0 only: everything but the tensor index, which is built from the
  // shards; topology.shard_files must list every rank's shard_file.
  CheckpointManifest manifest;
  int keep = 3;             // committed checkpoints to keep
  std::string protect_dir;  // never pruned (the checkpoint the run resumed from)
};

struct CheckpointWriteStats {
  std::string step_dir;         // the committed directory
  int64_t rank_bytes = 0;       // this rank's shard
  double rank_seconds = 0;      // writing this rank's shard, fsync included
  int64_t total_bytes = 0;      // all shards
  double slowest_rank_seconds = 0;
  double min_rank_gbps = 0, max_rank_gbps = 0;  // shard write rates over the ranks (GB/s, 1e9 bytes)
  double total_seconds = 0;     // begin to commit, as every rank saw it
};

// Collective over `world` (null: a single process writes everything). Every
// rank returns the same verdict; an error names the rank that failed (that
// rank's own message carries the cause).
Result<CheckpointWriteStats> WriteCheckpoint(const CheckpointWrite& write, Transport* world);

}  // namespace baton
