#include "checkpoint/manifest.h"

#include <fstream>
#include <map>
#include <sstream>

#include "checkpoint/crc32c.h"
#include "checkpoint/tensor_records.h"
#include "runtime/atomic_file.h"

namespace baton {
namespace {

std::string ManifestPath(const std::string& step_dir) { return step_dir + "/" + kManifestFileName; }

Status CheckEntry(const TensorEntry& e, const std::string& path) {
  auto bad = [&](const std::string& what) {
    return Status::Corruption(path + ": tensor " + e.name() + ": " + what);
  };
  Result<DType> dtype_or = CheckpointDTypeFromName(e.dtype());
  if (!dtype_or.ok()) return bad(dtype_or.status().message());
  const DType dtype = *dtype_or;
  if (e.shape_size() == 0) return bad("has no shape");
  int64_t row_elements = 1;
  for (int d = 1; d < e.shape_size(); ++d) row_elements *= e.shape(d);
  int64_t next_row = 0;
  for (const TensorSlice& s : e.slices()) {
    if (s.row_begin() != next_row || s.row_end() <= s.row_begin() || s.row_end() > e.shape(0))
      return bad("slices do not cover rows [0, " + std::to_string(e.shape(0)) + ") in order");
    const uint64_t bytes = static_cast<uint64_t>((s.row_end() - s.row_begin()) * row_elements) * SizeOf(dtype);
    if (s.payload_bytes() != bytes)
      return bad("slice of file " + s.file() + " holds " + std::to_string(s.payload_bytes()) + " bytes, expected " +
                 std::to_string(bytes));
    next_row = s.row_end();
  }
  if (next_row != e.shape(0)) return bad("slices do not cover all " + std::to_string(e.shape(0)) + " rows");
  return Status::OK();
}

}  // namespace

const char* CheckpointDTypeName(DType dtype) { return DTypeName(dtype); }

Result<DType> CheckpointDTypeFromName(const std::string& name) {
  for (DType d : {DType::kF32, DType::kF64, DType::kBF16})
    if (name == DTypeName(d)) return d;
  return Status::Corruption("unknown dtype '" + name + "' (expected f32, f64 or bf16)");
}

Status WriteManifest(const std::string& step_dir, const CheckpointManifest& manifest) {
  ManifestFile file;
  if (!manifest.SerializeToString(file.mutable_manifest()))
    return Status::Internal("cannot serialize the manifest of " + step_dir);
  file.set_crc32c(Crc32c(file.manifest()));
  std::string bytes;
  if (!file.SerializeToString(&bytes)) return Status::Internal("cannot serialize " + ManifestPath(step_dir));
  return WriteFileAtomically(ManifestPath(step_dir), bytes);
}

Result<CheckpointManifest> ReadManifest(const std::string& step_dir) {
  const std::string path = ManifestPath(step_dir);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("no manifest " + path + " (not a committed checkpoint directory)");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Status::IOError("cannot read " + path);
  ManifestFile file;
  if (!file.ParseFromString(buffer.str()) || !file.has_manifest() || !file.has_crc32c())
    return Status::Corruption(path + " is not a baton manifest (unreadable or truncated)");
  if (Crc32c(file.manifest()) != file.crc32c())
    return Status::Corruption("checksum mismatch in " + path + " (the manifest is damaged)");
  CheckpointManifest manifest;
  if (!manifest.ParseFromString(file.manifest())) return Status::Corruption(path + ": the manifest does not parse");
  if (manifest.format_version() > kCheckpointFormatVersion || manifest.format_version() == 0)
    return Status::InvalidArgument(path + " has checkpoint format version " + std::to_string(manifest.format_version()) +
                                   "; this baton reads versions 1 to " + std::to_string(kCheckpointFormatVersion) +
                                   " (written by a newer baton? use that version)");
  for (const TensorEntry& e : manifest.tensors()) BATON_RETURN_IF_ERROR(CheckEntry(e, path));
  return manifest;
}

Status AddShardToIndex(const std::string& step_dir, const std::string& file, CheckpointManifest* manifest) {
  BATON_ASSIGN_OR_RETURN(std::vector<TensorRecordInfo> records, ReadTensorRecordIndex(step_dir + "/" + file));
  std::map<std::string, int> index;
  for (int i = 0; i < manifest->tensors_size(); ++i) index[manifest->tensors(i).name()] = i;
  for (const TensorRecordInfo& r : records) {
    auto it = index.find(r.name);
    TensorEntry* e;
    if (it == index.end()) {
      e = manifest->add_tensors();
      e->set_name(r.name);
      e->set_dtype(CheckpointDTypeName(r.dtype));
      for (int64_t d : r.global_shape) e->add_shape(d);
      index[r.name] = manifest->tensors_size() - 1;
    } else {
      e = manifest->mutable_tensors(it->second);
      if (e->dtype() != CheckpointDTypeName(r.dtype) || Shape(e->shape().begin(), e->shape().end()) != r.global_shape)
        return Status::Internal("tensor " + r.name + " is written with different shapes or dtypes by two ranks");
    }
    TensorSlice* s = e->add_slices();
    s->set_file(file);
    s->set_row_begin(r.row_begin);
    s->set_row_end(r.row_end);
    s->set_payload_offset(r.payload_offset);
    s->set_payload_bytes(r.payload_bytes);
    s->set_payload_crc32c(r.payload_crc);
  }
  return Status::OK();
}

const TensorEntry* FindTensor(const CheckpointManifest& manifest, const std::string& name) {
  for (const TensorEntry& e : manifest.tensors())
    if (e.name() == name) return &e;
  return nullptr;
}

}  // namespace baton
