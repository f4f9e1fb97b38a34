#include "tests/checkpoint/scratch_files.h"
#include "checkpoint/tensor_records.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "checkpoint/crc32c.h"

namespace baton {
namespace {

using namespace baton::testing;  // NOLINT: shared test helpers

// Random values, never zero, so a payload left unwritten cannot pass.
Tensor RandomTensor(const Shape& shape, DType dtype, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor t = Tensor::Empty(shape, dtype);
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (dtype) {
      case DType::kF32: {
        float v = std::uniform_real_distribution<float>(0.5f, 2.0f)(rng);
        t.data<float>()[i] = (rng() & 1) ? v : -v;
        break;
      }
      case DType::kF64: {
        double v = std::uniform_real_distribution<double>(0.5, 2.0)(rng);
        t.data<double>()[i] = (rng() & 1) ? v : -v;
        break;
      }
      case DType::kI32: t.data<int32_t>()[i] = static_cast<int32_t>(rng() | 1u); break;
      default: ADD_FAILURE() << "unsupported dtype in test";
    }
  }
  return t;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TensorRecord Whole(const std::string& name, Tensor t) {
  TensorRecord r;
  r.name = name;
  r.global_shape = t.shape();
  r.row_begin = 0;
  r.row_end = t.dim(0);
  r.data = std::move(t);
  return r;
}

// A small two-record file used by the corruption tests.
std::vector<TensorRecord> SmallRecords() {
  Tensor full = RandomTensor({6, 3}, DType::kF32, 7);
  TensorRecord slice;
  slice.name = "blocks.3.attn.qkv.weight";
  slice.global_shape = {6, 3};
  slice.row_begin = 2;
  slice.row_end = 4;
  slice.data = full.Rows(2, 4);
  return {Whole("wte", RandomTensor({2, 2}, DType::kI32, 3)), slice};
}

// Reads the index and every record; the first error, or OK.
Status ReadEverything(const std::string& path) {
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  if (!index.ok()) return index.status();
  for (const TensorRecordInfo& info : *index) {
    Result<Tensor> t = ReadTensorRecord(path, info);
    if (!t.ok()) return t.status();
  }
  return Status::OK();
}

void PutU32(std::string* s, uint32_t v) { s->append(reinterpret_cast<const char*>(&v), 4); }
void PutI64(std::string* s, int64_t v) { s->append(reinterpret_cast<const char*>(&v), 8); }

// A file assembled byte by byte from the documented layout, independent of the writer.
std::string HandBuiltFile(uint32_t version, const std::string& name, uint32_t dtype, const Shape& shape,
                          int64_t begin, int64_t end, const std::string& payload) {
  std::string f("BATONCK1", 8);
  PutU32(&f, version);
  PutU32(&f, 1);
  PutU32(&f, Crc32c(f));
  std::string body;
  PutU32(&body, static_cast<uint32_t>(name.size()));
  body += name;
  PutU32(&body, dtype);
  PutU32(&body, static_cast<uint32_t>(shape.size()));
  for (int64_t d : shape) PutI64(&body, d);
  PutI64(&body, begin);
  PutI64(&body, end);
  PutI64(&body, static_cast<int64_t>(payload.size()));
  PutU32(&body, Crc32c(payload));
  std::string header;
  PutU32(&header, static_cast<uint32_t>(body.size()));
  header += body;
  PutU32(&header, Crc32c(header));
  return f + header + payload;
}

TEST(TensorRecords, RoundTripSeveralDtypesAndARowSlice) {
  ScratchDir dir;
  const std::string path = dir / "shard-p00-d00.bin";
  Tensor big = RandomTensor({10, 4, 3}, DType::kF64, 11);
  TensorRecord slice;
  slice.name = "blocks.0.mlp.fc.weight";
  slice.global_shape = {10, 4, 3};
  slice.row_begin = 3;
  slice.row_end = 7;
  slice.data = big.Rows(3, 7);
  std::vector<TensorRecord> records = {
      Whole("wte", RandomTensor({17, 8}, DType::kF32, 1)),
      Whole("ln_f.bias", RandomTensor({8}, DType::kF32, 2)),
      Whole("step_counter", RandomTensor({1}, DType::kI32, 3)),
      Whole("blocks.0.attn.qkv.weight.adafactor_row", RandomTensor({5, 2}, DType::kF64, 4)),
      slice,
      Whole("positions", RandomTensor({3, 2, 2, 2}, DType::kI32, 5)),
  };
  ASSERT_TRUE(WriteTensorRecords(path, records).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  ASSERT_EQ(index->size(), records.size());
  uint64_t expected_offset = kTensorRecordsFileHeaderBytes;
  for (size_t i = 0; i < records.size(); ++i) {
    const TensorRecordInfo& info = (*index)[i];
    const TensorRecord& r = records[i];
    SCOPED_TRACE(r.name);
    EXPECT_EQ(info.name, r.name);
    EXPECT_EQ(info.dtype, r.data.dtype());
    EXPECT_EQ(info.global_shape, r.global_shape);
    EXPECT_EQ(info.row_begin, r.row_begin);
    EXPECT_EQ(info.row_end, r.row_end);
    EXPECT_EQ(info.SliceShape(), r.data.shape());
    EXPECT_EQ(info.record_index, static_cast<int>(i));
    EXPECT_EQ(info.payload_bytes, r.data.nbytes());
    EXPECT_EQ(info.payload_crc, Crc32c(r.data.raw(), r.data.nbytes()));
    EXPECT_GT(info.payload_offset, expected_offset);
    expected_offset = info.payload_offset + info.payload_bytes;
    Result<Tensor> t = ReadTensorRecord(path, info);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_TRUE(t->device().is_cpu());
    EXPECT_TRUE(SameBytes(*t, r.data)) << t->Describe();
  }
  EXPECT_EQ(expected_offset, std::filesystem::file_size(path));
  // The slice is the right rows of the global tensor.
  Result<Tensor> s = ReadTensorRecord(path, (*index)[4]);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->data<double>()[0], big.data<double>()[3 * 4 * 3]);
}

TEST(TensorRecords, ReadsHandBuiltFile) {
  ScratchDir dir;
  const std::string path = dir / "hand.bin";
  const std::vector<float> values = {1.5f, -2.25f, 3.0f, 4.75f};
  const std::string payload(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  WriteFileBytes(path, HandBuiltFile(1, "h.0.w", 0 /*f32*/, {5, 2}, 1, 3, payload));
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  ASSERT_EQ(index->size(), 1u);
  Result<Tensor> t = ReadTensorRecord(path, (*index)[0]);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->shape(), (Shape{2, 2}));
  EXPECT_EQ(std::vector<float>(t->data<float>(), t->data<float>() + 4), values);
}

TEST(TensorRecords, EmptyShardRoundTrips) {
  ScratchDir dir;
  const std::string path = dir / "empty.bin";
  ASSERT_TRUE(WriteTensorRecords(path, {}).ok());
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_TRUE(index->empty());
}

TEST(TensorRecords, WriteRefusesBadSlicesAndShapesNamingFileAndTensor) {
  ScratchDir dir;
  const std::string path = dir / "bad.bin";
  auto expect_refused = [&](TensorRecord r, const std::string& what) {
    Status st = WriteTensorRecords(path, {Whole("ok", RandomTensor({2}, DType::kF32, 1)), r});
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
    EXPECT_TRUE(Contains(st.message(), path));
    if (!r.name.empty()) {
      EXPECT_TRUE(Contains(st.message(), "tensor " + r.name));
    }
    EXPECT_TRUE(Contains(st.message(), what));
    EXPECT_FALSE(std::filesystem::exists(path)) << "nothing may be written";
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  };
  TensorRecord r;
  r.name = "blocks.1.mlp.proj.weight";
  r.global_shape = {4, 3};
  r.row_begin = 3;
  r.row_end = 5;  // past dim 0
  r.data = RandomTensor({2, 3}, DType::kF32, 2);
  expect_refused(r, "outside global shape [4, 3]");
  r.row_begin = -1;
  r.row_end = 1;
  expect_refused(r, "outside global shape");
  r.row_begin = 3;
  r.row_end = 1;
  expect_refused(r, "outside global shape");
  r.row_begin = 0;
  r.row_end = 2;
  r.data = RandomTensor({2, 4}, DType::kF32, 2);  // wrong trailing dim
  expect_refused(r, "is not the slice shape [2, 3]");
  r.data = Tensor();
  expect_refused(r, "undefined");
  r.global_shape = {};
  r.row_end = 0;
  r.data = RandomTensor({1}, DType::kF32, 3);
  expect_refused(r, "rank 0");
  TensorRecord unnamed = Whole("", RandomTensor({2}, DType::kF32, 4));
  expect_refused(unnamed, "empty name");
}

TEST(TensorRecords, MissingFileNamesIt) {
  ScratchDir dir;
  const std::string path = dir / "nope.bin";
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(index.status().message(), path));
}

TEST(TensorRecords, WrongMagic) {
  ScratchDir dir;
  const std::string path = dir / "magic.bin";
  ASSERT_TRUE(WriteTensorRecords(path, SmallRecords()).ok());
  std::string bytes = ReadFileBytes(path);
  bytes[7] = '2';
  WriteFileBytes(path, bytes);
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(index.status().message(), path + ": magic is not \"BATONCK1\""));
}

TEST(TensorRecords, NewerFormatVersion) {
  ScratchDir dir;
  const std::string path = dir / "newer.bin";
  const std::string payload(8, '\x11');
  WriteFileBytes(path, HandBuiltFile(2, "wte", 0, {2}, 0, 2, payload));
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_FALSE(index.ok());
  EXPECT_TRUE(Contains(index.status().message(),
                       path + ": written by a newer baton: format 2, this build reads up to 1"));
}

TEST(TensorRecords, TruncatedPayloadNamesFileAndTensor) {
  ScratchDir dir;
  const std::string path = dir / "trunc.bin";
  ASSERT_TRUE(WriteTensorRecords(path, SmallRecords()).ok());
  std::string bytes = ReadFileBytes(path);
  WriteFileBytes(path, bytes.substr(0, bytes.size() - 3));
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(index.status().message(), path + ": truncated"));
  EXPECT_TRUE(Contains(index.status().message(), "tensor blocks.3.attn.qkv.weight"));
}

TEST(TensorRecords, FileTruncatedAfterIndexReadIsCaughtByRecordRead) {
  ScratchDir dir;
  const std::string path = dir / "late.bin";
  ASSERT_TRUE(WriteTensorRecords(path, SmallRecords()).ok());
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_TRUE(index.ok());
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 1);
  Result<Tensor> t = ReadTensorRecord(path, (*index)[1]);
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(Contains(t.status().message(), path + ": truncated"));
  EXPECT_TRUE(Contains(t.status().message(), "tensor blocks.3.attn.qkv.weight"));
}

TEST(TensorRecords, FlippedPayloadByteNamesFileAndTensor) {
  ScratchDir dir;
  const std::string path = dir / "flip.bin";
  ASSERT_TRUE(WriteTensorRecords(path, SmallRecords()).ok());
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_TRUE(index.ok());
  const TensorRecordInfo& info = (*index)[1];
  std::string bytes = ReadFileBytes(path);
  bytes[info.payload_offset + 5] ^= 0x10;
  WriteFileBytes(path, bytes);
  ASSERT_TRUE(ReadTensorRecordIndex(path).ok()) << "payloads are not read by the index";
  ASSERT_TRUE(ReadTensorRecord(path, (*index)[0]).ok()) << "the other record is intact";
  Result<Tensor> t = ReadTensorRecord(path, info);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(t.status().message(), "checksum mismatch in tensor blocks.3.attn.qkv.weight of " + path));
}

TEST(TensorRecords, FlippedShapeByteInRecordHeaderNamesFileAndTensor) {
  ScratchDir dir;
  const std::string path = dir / "hdr.bin";
  ASSERT_TRUE(WriteTensorRecords(path, SmallRecords()).ok());
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_TRUE(index.ok());
  // Record 1's header body: u32 len | u32 name len | name | u32 dtype | u32 rank | dims...
  const std::string name = "blocks.3.attn.qkv.weight";
  std::string bytes = ReadFileBytes(path);
  const size_t name_at = bytes.find(name);
  ASSERT_NE(name_at, std::string::npos);
  const size_t dim0_at = name_at + name.size() + 4 + 4;
  ASSERT_EQ(bytes[dim0_at], 6);
  bytes[dim0_at] = 9;  // global shape [6, 3] -> [9, 3]
  WriteFileBytes(path, bytes);
  Result<std::vector<TensorRecordInfo>> bad = ReadTensorRecordIndex(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(bad.status().message(), "checksum mismatch in the header of tensor " + name));
  EXPECT_TRUE(Contains(bad.status().message(), path));
}

TEST(TensorRecords, SliceOutsideGlobalShapeInFile) {
  ScratchDir dir;
  const std::string path = dir / "slice.bin";
  const std::string payload(3 * 2 * 4, '\x3f');
  // Rows [2, 5) of a [4, 2] tensor: checksums valid, slice impossible.
  WriteFileBytes(path, HandBuiltFile(1, "lm_head.weight", 0, {4, 2}, 2, 5, payload));
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(index.status().message(), "tensor lm_head.weight"));
  EXPECT_TRUE(Contains(index.status().message(), path));
  EXPECT_TRUE(Contains(index.status().message(), "slice rows [2, 5) is outside global shape [4, 2]"));
}

TEST(TensorRecords, PayloadSizeNotMatchingSliceInFile) {
  ScratchDir dir;
  const std::string path = dir / "size.bin";
  WriteFileBytes(path, HandBuiltFile(1, "wpe", 0, {4, 2}, 0, 4, std::string(12, '\x01')));
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_FALSE(index.ok());
  EXPECT_TRUE(Contains(index.status().message(), "tensor wpe"));
  EXPECT_TRUE(Contains(index.status().message(), "payload is 12 bytes"));
}

TEST(TensorRecords, TrailingBytesAreRefused) {
  ScratchDir dir;
  const std::string path = dir / "tail.bin";
  ASSERT_TRUE(WriteTensorRecords(path, SmallRecords()).ok());
  WriteFileBytes(path, ReadFileBytes(path) + "x");
  Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
  ASSERT_FALSE(index.ok());
  EXPECT_TRUE(Contains(index.status().message(), path + ": 1 unexpected bytes after the last of 2 records"));
}

TEST(TensorRecords, EverySingleByteFlipIsDetected) {
  ScratchDir dir;
  const std::string good_path = dir / "good.bin";
  const std::string path = dir / "flipped.bin";
  ASSERT_TRUE(WriteTensorRecords(good_path, SmallRecords()).ok());
  const std::string good = ReadFileBytes(good_path);
  ASSERT_TRUE(ReadEverything(good_path).ok());
  int trials = 0;
  for (size_t pos = 0; pos < good.size(); ++pos) {
    for (unsigned mask : {0x01u, 0x80u, 0xFFu, 0x5Au}) {
      std::string bytes = good;
      bytes[pos] = static_cast<char>(bytes[pos] ^ mask);
      WriteFileBytes(path, bytes);
      Status st = ReadEverything(path);
      ASSERT_FALSE(st.ok()) << "flip of byte " << pos << " with mask " << mask << " was silently accepted";
      ASSERT_TRUE(Contains(st.message(), path)) << "byte " << pos;
      ++trials;
    }
  }
  EXPECT_EQ(trials, static_cast<int>(4 * good.size()));
}

TEST(TensorRecords, TruncationAtEveryLengthIsDetected) {
  ScratchDir dir;
  const std::string good_path = dir / "good.bin";
  const std::string path = dir / "cut.bin";
  ASSERT_TRUE(WriteTensorRecords(good_path, SmallRecords()).ok());
  const std::string good = ReadFileBytes(good_path);
  for (size_t len = 0; len < good.size(); ++len) {
    WriteFileBytes(path, good.substr(0, len));
    Result<std::vector<TensorRecordInfo>> index = ReadTensorRecordIndex(path);
    ASSERT_FALSE(index.ok()) << "file cut to " << len << " of " << good.size() << " bytes was accepted";
    EXPECT_EQ(index.status().code(), Status::Code::kCorruption) << index.status().ToString();
    EXPECT_TRUE(Contains(index.status().message(), path + ": truncated")) << "length " << len;
  }
}

}  // namespace
}  // namespace baton
