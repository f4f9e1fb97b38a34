#include "checkpoint/checkpoint_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "checkpoint/tensor_records.h"

namespace baton {

Result<CheckpointReader> CheckpointReader::Open(const std::string& step_dir) {
  std::string dir = step_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.size() >= 4 && dir.compare(dir.size() - 4, 4, ".tmp") == 0)
    return Status::InvalidArgument(dir + " is an uncommitted checkpoint (its write never finished); resume from a "
                                         "committed step directory, or use --resume auto");
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::NotFound("checkpoint directory " + dir + " does not exist");
  CheckpointReader r;
  r.dir_ = dir;
  BATON_ASSIGN_OR_RETURN(r.manifest_, ReadManifest(dir));

  // The length each shard must have: the end of its last payload (or just the
  // file header for a rank that owned no tensor).
  std::map<std::string, uint64_t> expected;
  for (const std::string& f : r.manifest_.topology().shard_files()) expected[f] = kTensorRecordsFileHeaderBytes;
  for (const TensorEntry& e : r.manifest_.tensors())
    for (const TensorSlice& s : e.slices()) {
      if (!expected.count(s.file()))
        return Status::Corruption(dir + "/manifest.pb: tensor " + e.name() + " is in file " + s.file() +
                                  ", which the topology does not list");
      expected[s.file()] = std::max(expected[s.file()], s.payload_offset() + s.payload_bytes());
    }
  for (const auto& [file, bytes] : expected) {
    const std::string path = dir + "/" + file;
    if (::stat(path.c_str(), &st) != 0)
      return Status::Corruption("checkpoint " + dir + " is incomplete: shard file " + file + " is missing (" +
                                std::strerror(errno) + ")");
    if (static_cast<uint64_t>(st.st_size) != bytes)
      return Status::Corruption("shard file " + path + " has " + std::to_string(st.st_size) + " bytes, expected " +
                                std::to_string(bytes) + (static_cast<uint64_t>(st.st_size) < bytes ? " (truncated)" : ""));
  }
  return r;
}

Result<const std::vector<TensorRecordInfo>*> CheckpointReader::ShardIndex(const std::string& file) const {
  auto it = indexes_.find(file);
  if (it == indexes_.end()) {
    BATON_ASSIGN_OR_RETURN(std::vector<TensorRecordInfo> index, ReadTensorRecordIndex(dir_ + "/" + file));
    it = indexes_.emplace(file, std::move(index)).first;
  }
  return &it->second;
}

Result<Tensor> CheckpointReader::Read(const std::string& name) const {
  const TensorEntry* e = Find(name);
  if (!e) return Status::NotFound("checkpoint " + dir_ + " has no tensor " + name);
  BATON_ASSIGN_OR_RETURN(DType dtype, CheckpointDTypeFromName(e->dtype()));
  const Shape shape(e->shape().begin(), e->shape().end());
  Tensor out = e->slices_size() == 1 ? Tensor() : Tensor::Empty(shape, dtype);
  const size_t row_bytes = NumElements(shape) * SizeOf(dtype) / static_cast<size_t>(std::max<int64_t>(shape[0], 1));
  for (const TensorSlice& s : e->slices()) {
    BATON_ASSIGN_OR_RETURN(const std::vector<TensorRecordInfo>* index, ShardIndex(s.file()));
    const std::string path = dir_ + "/" + s.file();
    auto rec = std::find_if(index->begin(), index->end(), [&](const TensorRecordInfo& r) {
      return r.name == name && r.row_begin == s.row_begin() && r.row_end == s.row_end();
    });
    if (rec == index->end() || rec->payload_offset != s.payload_offset() || rec->payload_bytes != s.payload_bytes() ||
        rec->payload_crc != s.payload_crc32c() || rec->dtype != dtype || rec->global_shape != shape)
      return Status::Corruption("tensor " + name + " in " + path + " does not match the manifest's index");
    BATON_ASSIGN_OR_RETURN(Tensor slice, ReadTensorRecord(path, *rec));
    bytes_read_ += static_cast<int64_t>(slice.nbytes());
    if (e->slices_size() == 1) return slice;  // the whole tensor: no copy
    std::memcpy(static_cast<char*>(out.raw()) + static_cast<size_t>(s.row_begin()) * row_bytes, slice.raw(),
                static_cast<size_t>(slice.nbytes()));
  }
  return out;
}

Status CheckpointReader::VerifyAll(const std::function<void(const TensorEntry&, const Status&)>& on_tensor) const {
  Status first;
  for (const TensorEntry& e : manifest_.tensors()) {
    Result<Tensor> t = Read(e.name());
    on_tensor(e, t.status());
    if (!t.ok() && first.ok()) first = t.status();
  }
  return first;
}

}  // namespace baton
