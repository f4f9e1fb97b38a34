// Reading and writing a checkpoint's manifest (proto/checkpoint.proto), and
// building its tensor index from the shard files the ranks wrote.
#pragma once

#include <string>

#include "proto/checkpoint.pb.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

// The newest manifest format this build reads and writes. A manifest with a
// larger version is refused (written by a newer baton), never guessed at.
inline constexpr uint32_t kCheckpointFormatVersion = 1;
inline constexpr char kManifestFileName[] = "manifest.pb";

// Writes step_dir/manifest.pb atomically (serialized manifest + its CRC32C).
Status WriteManifest(const std::string& step_dir, const CheckpointManifest& manifest);

// Reads step_dir/manifest.pb, verifies its checksum and format version, and
// checks the tensor index is consistent (every tensor's slices cover its rows
// exactly once, sizes match shapes and dtypes). Errors name the file.
Result<CheckpointManifest> ReadManifest(const std::string& step_dir);

// Adds the records of shard file `file` (in step_dir) to the manifest's tensor
// index, verifying the file's record headers on the way.
Status AddShardToIndex(const std::string& step_dir, const std::string& file, CheckpointManifest* manifest);

// The index entry of a tensor, or null.
const TensorEntry* FindTensor(const CheckpointManifest& manifest, const std::string& name);

// "f32" / "f64" and back.
const char* CheckpointDTypeName(DType dtype);
Result<DType> CheckpointDTypeFromName(const std::string& name);

}  // namespace baton
