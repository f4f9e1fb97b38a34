#include "checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <tuple>

#include <nlohmann/json.hpp>

#include "runtime/atomic_file.h"
#include "runtime/file_descriptor.h"

namespace baton {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors is little-endian; so is this host");

using json = nlohmann::json;

constexpr char kMetadataKey[] = "__metadata__";
// The reference implementation refuses headers over 100 MB; so do we, before allocating one.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

// A file dtype this reader understands: its element size and what it becomes in memory.
struct FileDType {
  const char* name;
  size_t size;
  DType in_memory;
};
constexpr FileDType kFileDTypes[] = {
    {"F32", 4, DType::kF32}, {"F16", 2, DType::kF32}, {"BF16", 2, DType::kF32}, {"F64", 8, DType::kF64}};

float BitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// IEEE half to float, exact (every half is a float), including subnormals, inf and NaN.
float HalfToFloat(uint16_t h) {
  const float sign = (h & 0x8000u) ? -1.0f : 1.0f;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return BitsToFloat((static_cast<uint32_t>(h & 0x8000u) << 16) | 0x7f800000u | (mant << 13));
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal
  return BitsToFloat((static_cast<uint32_t>(h & 0x8000u) << 16) | ((exp + 127 - 15) << 23) | (mant << 13));
}

// bfloat16 is the upper half of a float's bits.
float BFloat16ToFloat(uint16_t b) { return BitsToFloat(static_cast<uint32_t>(b) << 16); }

Status ReadExactly(int fd, const std::string& path, uint64_t offset, void* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = pread(fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0)
      return Status::IOError(path + ": read at offset " + std::to_string(offset + done) + " failed: " + ErrnoText());
    if (r == 0)
      return Status::Corruption(path + ": file ended at offset " + std::to_string(offset + done) + " while reading " +
                                std::to_string(n) + " bytes at " + std::to_string(offset));
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

// One tensor entry of a header, validated against the buffer length.
struct Entry {
  std::string name;
  const FileDType* dtype = nullptr;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

Result<Entry> ParseEntry(const std::string& path, const std::string& name, const json& v, uint64_t buffer_bytes) {
  const std::string where = "tensor " + name + " of " + path;
  if (!v.is_object()) return Status::Corruption(where + ": header entry is " + v.dump() + ", expected an object");
  Entry e;
  e.name = name;
  const auto dtype = v.find("dtype");
  if (dtype == v.end() || !dtype->is_string())
    return Status::Corruption(where + ": \"dtype\" is missing or not a string");
  for (const FileDType& d : kFileDTypes) {
    if (*dtype == d.name) e.dtype = &d;
  }
  if (!e.dtype) {
    return Status::Unimplemented(where + ": dtype " + dtype->get<std::string>() +
                                 " is not supported (baton reads F32, F16, BF16 and F64)");
  }
  const auto shape = v.find("shape");
  if (shape == v.end() || !shape->is_array())
    return Status::Corruption(where + ": \"shape\" is missing or not an array");
  // Elements times element size, refusing overflow; anything past the buffer is wrong anyway.
  uint64_t bytes = e.dtype->size;
  bool overflow = false;
  for (const json& d : *shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Status::Corruption(where + ": shape " + shape->dump() +
                                " has an entry that is not a non-negative integer");
    }
    const uint64_t n = d.get<uint64_t>();
    e.shape.push_back(static_cast<int64_t>(n));
    if (n != 0 && bytes > std::numeric_limits<uint64_t>::max() / n) overflow = true;
    bytes = overflow ? 0 : bytes * n;
  }
  const auto offsets = v.find("data_offsets");
  if (offsets == v.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    return Status::Corruption(where + ": \"data_offsets\" is missing or not [begin, end] with integers >= 0");
  }
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  const std::string range = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + ")";
  if (e.end < e.begin || e.end > buffer_bytes) {
    return Status::Corruption(where + ": " + range + " is outside the " + std::to_string(buffer_bytes) +
                              "-byte data buffer (expected begin <= end <= " + std::to_string(buffer_bytes) + ")");
  }
  if (overflow || e.end - e.begin != bytes) {
    return Status::Corruption(where + ": " + range + " holds " + std::to_string(e.end - e.begin) + " bytes, but " +
                              e.dtype->name + " " + ShapeString(e.shape) + " needs " +
                              (overflow ? std::string("an overflowing count of") : std::to_string(bytes)));
  }
  return e;
}

Result<Tensor> ReadEntry(int fd, const std::string& path, uint64_t buffer_offset, const Entry& e) {
  Tensor t = Tensor::Empty(e.shape, e.dtype->in_memory);
  const uint64_t offset = buffer_offset + e.begin;
  if (e.dtype->size == SizeOf(t.dtype())) {
    BATON_RETURN_IF_ERROR(ReadExactly(fd, path, offset, t.raw(), t.nbytes()));
    return t;
  }
  std::vector<uint16_t> half(static_cast<size_t>(t.numel()));
  BATON_RETURN_IF_ERROR(ReadExactly(fd, path, offset, half.data(), half.size() * 2));
  float* out = t.data<float>();
  const bool bf16 = std::strcmp(e.dtype->name, "BF16") == 0;
  for (size_t i = 0; i < half.size(); ++i) out[i] = bf16 ? BFloat16ToFloat(half[i]) : HalfToFloat(half[i]);
  return t;
}

}  // namespace

Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                        const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const std::string where = "tensor " + name + " of " + path;
    if (name.empty() || name == kMetadataKey) {
      return Status::InvalidArgument(path + ": tensor name \"" + name + "\" is reserved or empty");
    }
    if (header.contains(name)) return Status::InvalidArgument(where + ": the name appears twice");
    if (!t.defined()) return Status::InvalidArgument(where + ": tensor is undefined");
    if (!t.device().is_cpu()) {
      return Status::InvalidArgument(where + ": is a " + t.device().ToString() + " tensor; copy it to the host first");
    }
    if (t.dtype() != DType::kF32 && t.dtype() != DType::kF64) {
      return Status::InvalidArgument(where + ": dtype " + DTypeName(t.dtype()) + " is not written (f32 or f64 only)");
    }
    header[name] = {{"dtype", t.dtype() == DType::kF32 ? "F32" : "F64"},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // the only failure: a name or value that is not UTF-8
    return Status::InvalidArgument(path + ": cannot write the safetensors header: " + e.what());
  }
  // Pad so that the buffer starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t n = text.size();
  std::vector<std::string_view> parts{std::string_view(reinterpret_cast<const char*>(&n), sizeof(n)), text};
  for (const auto& [name, t] : tensors) parts.emplace_back(static_cast<const char*>(t.raw()), t.nbytes());
  return WriteFileAtomically(path, parts);
}

Result<NamedTensors> ReadSafetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::NotFound(path + ": cannot open safetensors file: " + ErrnoText());
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Status::IOError(path + ": stat failed: " + ErrnoText());
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < 8) {
    return Status::Corruption(path + ": file is " + std::to_string(file_bytes) +
                              " bytes; a safetensors file starts with an 8-byte header length");
  }
  uint64_t header_bytes = 0;
  BATON_RETURN_IF_ERROR(ReadExactly(fd.get(), path, 0, &header_bytes, 8));
  if (header_bytes > file_bytes - 8 || header_bytes > kMaxHeaderBytes) {
    return Status::Corruption(path + ": header length " + std::to_string(header_bytes) + " runs past the end of the " +
                              std::to_string(file_bytes) + "-byte file (or exceeds the 100 MiB limit); " +
                              "truncated, or not a safetensors file");
  }
  std::string text(header_bytes, '\0');
  BATON_RETURN_IF_ERROR(ReadExactly(fd.get(), path, 8, text.data(), text.size()));
  json header;
  try {
    header = json::parse(text);
  } catch (const json::parse_error& e) {
    return Status::Corruption(path + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) return Status::Corruption(path + ": safetensors header is not a JSON object");

  const uint64_t buffer_offset = 8 + header_bytes;
  const uint64_t buffer_bytes = file_bytes - buffer_offset;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) return Status::Corruption(path + ": \"__metadata__\" is not a JSON object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) return Status::Corruption(path + ": \"__metadata__\" entry " + k + " is not a string");
        if (metadata) (*metadata)[k] = v.get<std::string>();
      }
      continue;
    }
    BATON_ASSIGN_OR_RETURN(Entry e, ParseEntry(path, key, value, buffer_bytes));
    entries.push_back(std::move(e));
  }

  // File order; then two tensors must not share a byte (empty ones occupy none).
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin == e.end) continue;
    if (previous && e.begin < previous->end) {
      return Status::Corruption(path + ": tensors " + previous->name + " [" + std::to_string(previous->begin) + ", " +
                                std::to_string(previous->end) + ") and " + e.name + " [" + std::to_string(e.begin) +
                                ", " + std::to_string(e.end) + ") overlap in the data buffer");
    }
    if (!previous || e.end > previous->end) previous = &e;
  }

  NamedTensors out;
  out.reserve(entries.size());
  for (const Entry& e : entries) {
    Result<Tensor> t = ReadEntry(fd.get(), path, buffer_offset, e);
    if (!t.ok()) return t.status().WithContext("tensor " + e.name);
    out.emplace_back(e.name, std::move(t).value());
  }
  return out;
}

}  // namespace baton
