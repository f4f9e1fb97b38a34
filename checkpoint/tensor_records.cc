#include "checkpoint/tensor_records.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "checkpoint/crc32c.h"
#include "runtime/atomic_file.h"
#include "runtime/file_descriptor.h"

namespace baton {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the shard format is little-endian; so is this host");

constexpr uint32_t kMaxRank = 16;
constexpr uint32_t kMaxRecordHeaderBytes = 1u << 20;
// Smallest header body: empty name, rank 0 (both rejected later, but bound the count with it).
constexpr uint64_t kMinRecordBytes = 4 + (4 + 4 + 4 + 8 + 8 + 8 + 4) + 4;

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08X", v);
  return buf;
}

bool ValidDType(uint32_t d) { return d <= static_cast<uint32_t>(DType::kU16); }

// Elements of rows [begin, end) of `shape`, times `elem` bytes; false on overflow.
bool SliceBytes(const Shape& shape, int64_t begin, int64_t end, size_t elem, uint64_t* bytes) {
  uint64_t n = static_cast<uint64_t>(end - begin);
  for (size_t i = 1; i < shape.size(); ++i) {
    const uint64_t d = static_cast<uint64_t>(shape[i]);
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / d) return false;
    n *= d;
  }
  if (n > std::numeric_limits<uint64_t>::max() / elem) return false;
  *bytes = n * elem;
  return true;
}

// "" when the slice is valid, else why not.
std::string SliceProblem(const Shape& shape, int64_t begin, int64_t end) {
  if (shape.empty()) return "rank 0 (store a scalar as shape [1])";
  for (int64_t d : shape) {
    if (d < 0) return "global shape " + ShapeString(shape) + " has a negative dimension";
  }
  if (begin < 0 || end < begin || end > shape[0]) {
    return "slice rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") is outside global shape " +
           ShapeString(shape) + " (expected 0 <= begin <= end <= " + std::to_string(shape[0]) + ")";
  }
  return "";
}

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), sizeof(v)); }
void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), sizeof(v)); }
void PutI64(std::string* out, int64_t v) { out->append(reinterpret_cast<const char*>(&v), sizeof(v)); }

// Bounds-checked little-endian reads from a record header body.
class Cursor {
 public:
  Cursor(const char* data, size_t size) : data_(data), size_(size) {}
  bool U32(uint32_t* v) { return Raw(v, sizeof(*v)); }
  bool U64(uint64_t* v) { return Raw(v, sizeof(*v)); }
  bool I64(int64_t* v) { return Raw(v, sizeof(*v)); }
  bool Bytes(size_t n, std::string* s) {
    if (n > size_ - pos_) return false;
    s->assign(data_ + pos_, n);
    pos_ += n;
    return true;
  }
  bool AtEnd() const { return pos_ == size_; }

 private:
  bool Raw(void* v, size_t n) {
    if (n > size_ - pos_) return false;
    std::memcpy(v, data_ + pos_, n);
    pos_ += n;
    return true;
  }
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
};


// Reads up to n bytes at offset; the count read (short only at end of file), or an error.
Result<size_t> ReadAt(int fd, const std::string& path, uint64_t offset, void* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = pread(fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(path + ": read of " + std::to_string(n) + " bytes at offset " + std::to_string(offset) +
                             " failed: " + ErrnoText());
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

Result<uint64_t> FileSize(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Status::IOError(path + ": stat failed: " + ErrnoText());
  return static_cast<uint64_t>(st.st_size);
}

std::string Truncated(const std::string& path, const std::string& what, uint64_t needed, uint64_t file_bytes) {
  return path + ": truncated: " + what + " needs the file to be at least " + std::to_string(needed) +
         " bytes, but it is " + std::to_string(file_bytes);
}

}  // namespace

Shape TensorRecordInfo::SliceShape() const {
  Shape s = global_shape;
  if (!s.empty()) s[0] = row_end - row_begin;
  return s;
}

Status WriteTensorRecords(const std::string& path, const std::vector<TensorRecord>& records) {
  if (records.size() > std::numeric_limits<uint32_t>::max()) {
    return Status::InvalidArgument(path + ": " + std::to_string(records.size()) + " records do not fit a shard");
  }
  std::vector<std::string> headers;
  headers.reserve(records.size() + 1);
  std::string file_header(kTensorRecordsMagic, sizeof(kTensorRecordsMagic));
  PutU32(&file_header, kTensorRecordsFormatVersion);
  PutU32(&file_header, static_cast<uint32_t>(records.size()));
  PutU32(&file_header, Crc32c(file_header));
  headers.push_back(std::move(file_header));

  for (const TensorRecord& r : records) {
    const std::string where = "tensor " + r.name + " of " + path;
    if (r.name.empty()) return Status::InvalidArgument(path + ": a tensor record has an empty name");
    if (r.name.size() > kMaxRecordHeaderBytes / 2) {
      return Status::InvalidArgument(where + ": name is " + std::to_string(r.name.size()) + " bytes, too long");
    }
    if (r.global_shape.size() > kMaxRank) {
      return Status::InvalidArgument(where + ": rank " + std::to_string(r.global_shape.size()) + " exceeds " +
                                     std::to_string(kMaxRank));
    }
    const std::string problem = SliceProblem(r.global_shape, r.row_begin, r.row_end);
    if (!problem.empty()) return Status::InvalidArgument(where + ": " + problem);
    if (!r.data.defined()) return Status::InvalidArgument(where + ": data tensor is undefined");
    if (!r.data.device().is_cpu()) {
      return Status::InvalidArgument(where + ": data is a " + r.data.device().ToString() +
                                     " tensor; copy it to the host first");
    }
    Shape slice = r.global_shape;
    slice[0] = r.row_end - r.row_begin;
    if (r.data.shape() != slice) {
      return Status::InvalidArgument(where + ": data shape " + ShapeString(r.data.shape()) +
                                     " is not the slice shape " + ShapeString(slice) + " (rows [" +
                                     std::to_string(r.row_begin) + ", " + std::to_string(r.row_end) +
                                     ") of global shape " + ShapeString(r.global_shape) + ")");
    }
    uint64_t payload_bytes = 0;
    if (!SliceBytes(r.global_shape, r.row_begin, r.row_end, SizeOf(r.data.dtype()), &payload_bytes) ||
        payload_bytes != r.data.nbytes()) {
      return Status::InvalidArgument(where + ": payload size overflows");
    }
    std::string body;
    PutU32(&body, static_cast<uint32_t>(r.name.size()));
    body += r.name;
    PutU32(&body, static_cast<uint32_t>(r.data.dtype()));
    PutU32(&body, static_cast<uint32_t>(r.global_shape.size()));
    for (int64_t d : r.global_shape) PutI64(&body, d);
    PutI64(&body, r.row_begin);
    PutI64(&body, r.row_end);
    PutU64(&body, payload_bytes);
    PutU32(&body, Crc32c(r.data.raw(), payload_bytes));
    std::string header;
    PutU32(&header, static_cast<uint32_t>(body.size()));
    header += body;
    PutU32(&header, Crc32c(header));
    headers.push_back(std::move(header));
  }

  std::vector<std::string_view> parts;
  parts.reserve(2 * records.size() + 1);
  parts.emplace_back(headers[0]);
  for (size_t i = 0; i < records.size(); ++i) {
    parts.emplace_back(headers[i + 1]);
    parts.emplace_back(static_cast<const char*>(records[i].data.raw()), records[i].data.nbytes());
  }
  return WriteFileAtomically(path, parts);
}

Result<std::vector<TensorRecordInfo>> ReadTensorRecordIndex(const std::string& path) {
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::NotFound(path + ": cannot open checkpoint shard: " + ErrnoText());
  BATON_ASSIGN_OR_RETURN(const uint64_t file_bytes, FileSize(fd.get(), path));

  char fh[kTensorRecordsFileHeaderBytes];
  BATON_ASSIGN_OR_RETURN(const size_t got, ReadAt(fd.get(), path, 0, fh, sizeof(fh)));
  if (got >= sizeof(kTensorRecordsMagic) && std::memcmp(fh, kTensorRecordsMagic, sizeof(kTensorRecordsMagic)) != 0) {
    return Status::Corruption(path + ": magic is not \"BATONCK1\" (not a baton checkpoint shard, or corrupted)");
  }
  if (got < sizeof(fh)) {
    return Status::Corruption(Truncated(path, "the " + std::to_string(sizeof(fh)) + "-byte file header",
                                        sizeof(fh), file_bytes));
  }
  uint32_t version, count, stored_crc;
  std::memcpy(&version, fh + 8, 4);
  std::memcpy(&count, fh + 12, 4);
  std::memcpy(&stored_crc, fh + 16, 4);
  if (version > kTensorRecordsFormatVersion) {
    return Status::Corruption(path + ": written by a newer baton: format " + std::to_string(version) +
                              ", this build reads up to " + std::to_string(kTensorRecordsFormatVersion));
  }
  if (version == 0) return Status::Corruption(path + ": format version is 0, expected 1.." +
                                              std::to_string(kTensorRecordsFormatVersion) + " (corrupted)");
  if (Crc32c(fh, 16) != stored_crc) {
    return Status::Corruption(path + ": checksum mismatch in the file header: CRC32C is " + Hex(Crc32c(fh, 16)) +
                              ", stored " + Hex(stored_crc));
  }
  if (count > (file_bytes - sizeof(fh)) / kMinRecordBytes + 1) {
    return Status::Corruption(Truncated(path, std::to_string(count) + " records", sizeof(fh) + count * kMinRecordBytes,
                                        file_bytes));
  }

  std::vector<TensorRecordInfo> index;
  index.reserve(count);
  uint64_t offset = sizeof(fh);
  std::string body;
  for (uint32_t i = 0; i < count; ++i) {
    const std::string rec = "record " + std::to_string(i) +
                            (i == 0 ? std::string(" (the first)") : " (after tensor " + index.back().name + ")");
    uint32_t body_len = 0;
    if (offset + 4 > file_bytes) {
      return Status::Corruption(Truncated(path, "the header of " + rec, offset + 4, file_bytes));
    }
    BATON_RETURN_IF_ERROR(ReadAt(fd.get(), path, offset, &body_len, 4).status());
    if (body_len > kMaxRecordHeaderBytes) {
      return Status::Corruption(path + ": " + rec + " claims a " + std::to_string(body_len) +
                                "-byte header (limit " + std::to_string(kMaxRecordHeaderBytes) + "; corrupted)");
    }
    const uint64_t header_end = offset + 4 + body_len + 4;
    if (header_end > file_bytes) {
      return Status::Corruption(Truncated(path, "the header of " + rec, header_end, file_bytes));
    }
    body.resize(4 + body_len + 4);
    BATON_ASSIGN_OR_RETURN(const size_t n, ReadAt(fd.get(), path, offset, body.data(), body.size()));
    if (n != body.size()) return Status::Corruption(Truncated(path, "the header of " + rec, header_end, file_bytes));

    TensorRecordInfo info;
    info.record_index = static_cast<int>(i);
    Cursor c(body.data() + 4, body_len);
    uint32_t name_len = 0, dtype = 0, rank = 0;
    const bool name_ok = c.U32(&name_len) && c.Bytes(name_len, &info.name);
    std::memcpy(&info.header_crc, body.data() + 4 + body_len, 4);
    const uint32_t actual_crc = Crc32c(body.data(), 4 + body_len);
    if (actual_crc != info.header_crc) {
      // The name may itself be the corrupted part; show it only as what the bytes say.
      return Status::Corruption("checksum mismatch in the header of tensor " +
                                (name_ok ? info.name : std::string("<unreadable name>")) + " (" + rec + ") of " +
                                path + ": CRC32C is " + Hex(actual_crc) + ", stored " + Hex(info.header_crc));
    }
    const std::string where = "tensor " + info.name + " (" + rec + ") of " + path;
    if (!name_ok || name_len == 0 || !c.U32(&dtype) || !c.U32(&rank)) {
      return Status::Corruption("malformed header of " + where);
    }
    if (!ValidDType(dtype)) return Status::Corruption("unknown dtype " + std::to_string(dtype) + " in " + where);
    info.dtype = static_cast<DType>(dtype);
    if (rank == 0 || rank > kMaxRank) {
      return Status::Corruption("rank " + std::to_string(rank) + " in " + where + ", expected 1.." +
                                std::to_string(kMaxRank));
    }
    info.global_shape.resize(rank);
    for (uint32_t d = 0; d < rank; ++d) {
      if (!c.I64(&info.global_shape[d])) return Status::Corruption("malformed header of " + where);
    }
    if (!c.I64(&info.row_begin) || !c.I64(&info.row_end) || !c.U64(&info.payload_bytes) ||
        !c.U32(&info.payload_crc) || !c.AtEnd()) {
      return Status::Corruption("malformed header of " + where);
    }
    const std::string problem = SliceProblem(info.global_shape, info.row_begin, info.row_end);
    if (!problem.empty()) return Status::Corruption(where + ": " + problem);
    uint64_t expected = 0;
    if (!SliceBytes(info.global_shape, info.row_begin, info.row_end, SizeOf(info.dtype), &expected) ||
        expected != info.payload_bytes) {
      return Status::Corruption(where + ": payload is " + std::to_string(info.payload_bytes) + " bytes, but " +
                                DTypeName(info.dtype) + " rows [" + std::to_string(info.row_begin) + ", " +
                                std::to_string(info.row_end) + ") of " + ShapeString(info.global_shape) + " need " +
                                (expected ? std::to_string(expected) : std::string("an overflowing count of")));
    }
    info.payload_offset = header_end;
    if (info.payload_bytes > file_bytes - header_end) {
      return Status::Corruption(Truncated(path, "the payload of tensor " + info.name + " (" + rec + ")",
                                          header_end + info.payload_bytes, file_bytes));
    }
    offset = header_end + info.payload_bytes;
    index.push_back(std::move(info));
  }
  if (offset != file_bytes) {
    return Status::Corruption(path + ": " + std::to_string(file_bytes - offset) + " unexpected bytes after the last of " +
                              std::to_string(count) + " records (corrupted record count, or not one baton shard)");
  }
  return index;
}

Result<Tensor> ReadTensorRecord(const std::string& path, const TensorRecordInfo& info) {
  const std::string where = "tensor " + info.name + " of " + path;
  const std::string problem = SliceProblem(info.global_shape, info.row_begin, info.row_end);
  if (!problem.empty()) return Status::InvalidArgument(where + ": " + problem);
  uint64_t expected = 0;
  if (!SliceBytes(info.global_shape, info.row_begin, info.row_end, SizeOf(info.dtype), &expected) ||
      expected != info.payload_bytes) {
    return Status::InvalidArgument(where + ": index entry's payload size " + std::to_string(info.payload_bytes) +
                                   " does not match its slice");
  }
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::NotFound(path + ": cannot open checkpoint shard: " + ErrnoText());
  BATON_ASSIGN_OR_RETURN(const uint64_t file_bytes, FileSize(fd.get(), path));
  if (info.payload_offset > file_bytes || info.payload_bytes > file_bytes - info.payload_offset) {
    return Status::Corruption(Truncated(path, "the payload of tensor " + info.name,
                                        info.payload_offset + info.payload_bytes, file_bytes));
  }
  Tensor t = Tensor::Empty(info.SliceShape(), info.dtype);
  BATON_ASSIGN_OR_RETURN(const size_t n, ReadAt(fd.get(), path, info.payload_offset, t.raw(), info.payload_bytes));
  if (n != info.payload_bytes) {
    return Status::Corruption(Truncated(path, "the payload of tensor " + info.name,
                                        info.payload_offset + info.payload_bytes, file_bytes));
  }
  const uint32_t actual = Crc32c(t.raw(), info.payload_bytes);
  if (actual != info.payload_crc) {
    return Status::Corruption("checksum mismatch in tensor " + info.name + " of " + path + ": payload CRC32C is " +
                              Hex(actual) + ", stored " + Hex(info.payload_crc) + " (the file is corrupted)");
  }
  return t;
}

}  // namespace baton
