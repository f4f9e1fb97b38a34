// Reading a committed checkpoint by logical tensor name, under any layout.
// Every byte read is verified: the manifest's checksum, each shard's file and
// record headers, each payload's CRC32C (against the record and the manifest).
// Errors name the file and the tensor.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "checkpoint/manifest.h"
#include "checkpoint/tensor_records.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

class CheckpointReader {
 public:
  // Opens step_dir: refuses an uncommitted (".tmp") directory, reads and
  // verifies the manifest, and checks that every shard file it lists exists
  // with the length the index implies (a missing or truncated shard is found
  // here, before anything is loaded).
  static Result<CheckpointReader> Open(const std::string& step_dir);

  const std::string& dir() const { return dir_; }
  const CheckpointManifest& manifest() const { return manifest_; }
  int64_t step() const { return manifest_.step(); }
  const TensorEntry* Find(const std::string& name) const { return FindTensor(manifest_, name); }

  // The whole logical tensor (its slices joined), verified. NotFound when the
  // checkpoint has no such tensor.
  Result<Tensor> Read(const std::string& name) const;
  // Bytes of payload read so far (for I/O rates).
  int64_t bytes_read() const { return bytes_read_; }

  // Reads and verifies every tensor; `on_tensor` sees each one's outcome.
  // Returns the first error (all tensors are still visited).
  Status VerifyAll(const std::function<void(const TensorEntry&, const Status&)>& on_tensor) const;

 private:
  Result<const std::vector<TensorRecordInfo>*> ShardIndex(const std::string& file) const;

  std::string dir_;
  CheckpointManifest manifest_;
  mutable std::map<std::string, std::vector<TensorRecordInfo>> indexes_;  // per shard file, read on first use
  mutable int64_t bytes_read_ = 0;
};

}  // namespace baton
