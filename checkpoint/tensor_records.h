// A checkpoint shard file: the tensor records one rank owns, each a slice of
// rows [row_begin, row_end) along dim 0 of a logical (global) tensor, each
// checksummed with CRC32C, so a shard can be read back under any topology.
//
// Layout (all integers little-endian):
//   file header (20 bytes):
//     "BATONCK1" | u32 format version (1) | u32 record count | u32 CRC32C of the 16 bytes before it
//   record, `record count` times:
//     u32 header body length H
//     header body (H bytes):
//       u32 name length | name bytes | u32 dtype | u32 rank | i64 global dims[rank]
//       | i64 row_begin | i64 row_end | u64 payload bytes | u32 payload CRC32C
//     u32 CRC32C of (the length field and the header body)
//     payload: the slice's elements, row-major
//   end of file exactly after the last payload.
// Files are written with WriteFileAtomically (tmp + fsync + rename + dir fsync).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

inline constexpr char kTensorRecordsMagic[8] = {'B', 'A', 'T', 'O', 'N', 'C', 'K', '1'};
inline constexpr uint32_t kTensorRecordsFormatVersion = 1;  // the newest format this build reads and writes
inline constexpr size_t kTensorRecordsFileHeaderBytes = 20;

// One record to write. `data` is a host tensor whose shape is the slice's
// shape: {row_end - row_begin, global_shape[1], ...}; its dtype is stored.
// A whole tensor is row_begin = 0, row_end = global_shape[0]. Rank >= 1
// (store a scalar as shape {1}).
struct TensorRecord {
  std::string name;
  Shape global_shape;
  int64_t row_begin = 0;
  int64_t row_end = 0;
  Tensor data;
};

// What the index of a shard file says about one record (no payload loaded).
struct TensorRecordInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape global_shape;
  int64_t row_begin = 0;
  int64_t row_end = 0;
  uint64_t payload_offset = 0;  // byte offset of the payload in the file
  uint64_t payload_bytes = 0;
  uint32_t payload_crc = 0;  // stored CRC32C of the payload
  uint32_t header_crc = 0;   // stored CRC32C of the record header (already verified by the index read)
  int record_index = 0;      // position in the file, from 0

  // {row_end - row_begin, global_shape[1], ...}: the shape ReadTensorRecord returns.
  Shape SliceShape() const;
};

// Writes `records` to `path` atomically. InvalidArgument (naming file and
// tensor) for an empty name, a rank-0 or undefined/non-host tensor, a slice
// outside the global shape, or data whose shape is not the slice's shape.
Status WriteTensorRecords(const std::string& path, const std::vector<TensorRecord>& records);

// Reads and verifies the file header and every record header (magic, format
// version, header checksums, slices inside their global shapes, payload sizes,
// exact file length) without reading payloads. Errors name the file and,
// where one is known, the tensor.
Result<std::vector<TensorRecordInfo>> ReadTensorRecordIndex(const std::string& path);

// Reads one record's payload into a new host tensor of info.SliceShape(),
// verifying its CRC32C ("checksum mismatch in tensor NAME of PATH ...").
Result<Tensor> ReadTensorRecord(const std::string& path, const TensorRecordInfo& info);

}  // namespace baton
