#include "tests/checkpoint/scratch_files.h"
#include "checkpoint/safetensors.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/rng.h"

namespace baton {
namespace {

using namespace baton::testing;  // NOLINT: shared test helpers

// Little-endian by shifts, so the test does not lean on the host's byte order.
void PutLE(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t FloatBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
uint64_t DoubleBits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}

// A safetensors file: u64 header length, the header text, the buffer.
std::string SafetensorsBytes(const std::string& header, const std::string& buffer) {
  std::string out;
  PutLE(&out, header.size(), 8);
  return out + header + buffer;
}

// Random non-zero floats, so a payload left unwritten cannot pass.
std::vector<float> RandomFloats(size_t n, uint64_t stream) {
  RandomStream rng(1234, stream);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>((rng.Uniform() + 0.5) * (rng.Uniform() < 0.5 ? -1 : 1));
  return v;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(Safetensors, ReadsHandBuiltFileWithF32F16Bf16AndF64) {
  ScratchDir dir;
  const std::string path = dir / "hand.safetensors";
  const std::vector<float> f32 = RandomFloats(6, 1);
  // F16 bit patterns and their exact values.
  const std::vector<uint16_t> f16_bits = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x03FF, 0x8000, 0x7C00};
  const std::vector<float> f16_values = {
      1.0f, -2.0f, 0.333251953125f, 65504.0f, std::ldexp(1.0f, -24), 1023 * std::ldexp(1.0f, -24), -0.0f, INFINITY};
  // BF16 bit patterns: the upper 16 bits of the float.
  const std::vector<uint16_t> bf16_bits = {0x3F80, 0xC0A0, 0x3E20, 0x4049};
  const std::vector<float> bf16_values = {1.0f, -5.0f, 0.15625f, 3.140625f};
  const double f64 = -0.1234567890123;

  // Buffer order: bf16 (8 bytes), f32 (24), f64 (8), f16 (16); header keys in another order.
  std::string buffer;
  for (uint16_t b : bf16_bits) PutLE(&buffer, b, 2);
  for (float f : f32) PutLE(&buffer, FloatBits(f), 4);
  PutLE(&buffer, DoubleBits(f64), 8);
  for (uint16_t b : f16_bits) PutLE(&buffer, b, 2);
  std::string header = R"({"w.f32":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]},)"
                       R"("__metadata__":{"format":"pt","note":"hand made"},)"
                       R"("a.f16":{"dtype":"F16","shape":[2,2,2],"data_offsets":[40,56]},)"
                       R"("z.bf16":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},)"
                       R"("s.f64":{"dtype":"F64","shape":[],"data_offsets":[32,40]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  WriteFileBytes(path, SafetensorsBytes(header, buffer));

  std::map<std::string, std::string> metadata;
  Result<NamedTensors> r = ReadSafetensors(path, &metadata);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"note", "hand made"}}));
  ASSERT_EQ(r->size(), 4u);
  // File (data offset) order.
  EXPECT_EQ((*r)[0].first, "z.bf16");
  EXPECT_EQ((*r)[1].first, "w.f32");
  EXPECT_EQ((*r)[2].first, "s.f64");
  EXPECT_EQ((*r)[3].first, "a.f16");

  const Tensor& bf16 = (*r)[0].second;
  ASSERT_EQ(bf16.dtype(), DType::kF32);
  ASSERT_EQ(bf16.shape(), Shape({4}));
  for (size_t i = 0; i < bf16_values.size(); ++i) EXPECT_EQ(bf16.data<float>()[i], bf16_values[i]) << i;

  const Tensor& w = (*r)[1].second;
  ASSERT_EQ(w.shape(), Shape({2, 3}));
  for (size_t i = 0; i < f32.size(); ++i) EXPECT_EQ(FloatBits(w.data<float>()[i]), FloatBits(f32[i])) << i;

  const Tensor& s = (*r)[2].second;
  ASSERT_EQ(s.dtype(), DType::kF64);
  EXPECT_EQ(s.shape(), Shape({}));
  EXPECT_EQ(s.data<double>()[0], f64);

  const Tensor& h = (*r)[3].second;
  ASSERT_EQ(h.dtype(), DType::kF32);
  ASSERT_EQ(h.shape(), Shape({2, 2, 2}));
  for (size_t i = 0; i < f16_values.size(); ++i) EXPECT_EQ(h.data<float>()[i], f16_values[i]) << i;
  EXPECT_TRUE(std::signbit(h.data<float>()[6]));
}

TEST(Safetensors, F16NaNStaysNaN) {
  ScratchDir dir;
  const std::string path = dir / "nan.safetensors";
  std::string buffer;
  PutLE(&buffer, 0x7E00, 2);
  PutLE(&buffer, 0xFC00, 2);
  WriteFileBytes(path, SafetensorsBytes(R"({"n":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", buffer));
  Result<NamedTensors> r = ReadSafetensors(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(std::isnan((*r)[0].second.data<float>()[0]));
  EXPECT_EQ((*r)[0].second.data<float>()[1], -INFINITY);
}

TEST(Safetensors, WriteReadRoundTripIsBitwiseAndFollowsTheFormat) {
  ScratchDir dir;
  const std::string path = dir / "rt.safetensors";
  NamedTensors tensors;
  tensors.emplace_back("z.first", Tensor::FromVector<float>({3, 5}, RandomFloats(15, 2)));
  tensors.emplace_back("a.second", Tensor::FromVector<float>({7}, RandomFloats(7, 3)));
  tensors.emplace_back("scalar", Tensor::FromVector<float>({}, RandomFloats(1, 4)));
  tensors.emplace_back("empty", Tensor::Empty({0, 4}, DType::kF32));
  const std::vector<float> d = RandomFloats(6, 5);
  tensors.emplace_back("f64", Tensor::FromVector<double>({2, 1, 3}, std::vector<double>(d.begin(), d.end())));
  // A view (rows of a larger tensor) is written from its own offset.
  Tensor big = Tensor::FromVector<float>({4, 3}, RandomFloats(12, 6));
  tensors.emplace_back("rows", big.Rows(1, 3));
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"step", "17"}};
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());

  std::map<std::string, std::string> read_metadata;
  Result<NamedTensors> r = ReadSafetensors(path, &read_metadata);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(read_metadata, metadata);
  ASSERT_EQ(r->size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ((*r)[i].first, tensors[i].first);
    EXPECT_TRUE(SameBytes((*r)[i].second, tensors[i].second)) << tensors[i].first;
  }

  // The bytes, checked against the format description rather than our reader.
  const std::string bytes = ReadFileBytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u) << "header padded to 8 bytes";
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["__metadata__"]["step"], "17");
  uint64_t offset = 0;
  const size_t sizes[] = {4, 4, 4, 4, 8, 4};
  for (size_t i = 0; i < tensors.size(); ++i) {
    const nlohmann::json& e = header[tensors[i].first];
    EXPECT_EQ(e["dtype"], i == 4 ? "F64" : "F32");
    EXPECT_EQ(e["shape"].get<Shape>(), tensors[i].second.shape());
    const uint64_t nbytes = static_cast<uint64_t>(tensors[i].second.numel()) * sizes[i];
    EXPECT_EQ(e["data_offsets"], nlohmann::json({offset, offset + nbytes})) << tensors[i].first;
    EXPECT_EQ(bytes.compare(8 + n + offset, nbytes, static_cast<const char*>(tensors[i].second.raw()), nbytes), 0);
    offset += nbytes;
  }
  EXPECT_EQ(bytes.size(), 8 + n + offset);
}

TEST(Safetensors, WriteRefusesWhatItCannotWriteNamingFileAndTensor) {
  ScratchDir dir;
  const std::string path = dir / "bad.safetensors";
  const Tensor t = Tensor::FromVector<float>({2}, RandomFloats(2, 7));
  const auto refused = [&](const NamedTensors& tensors, const std::string& text) {
    const Status s = WriteSafetensors(path, tensors, {});
    EXPECT_FALSE(s.ok());
    EXPECT_TRUE(Contains(s.message(), path));
    EXPECT_TRUE(Contains(s.message(), text));
    EXPECT_FALSE(std::filesystem::exists(path));
  };
  refused({{"x", t}, {"x", t}}, "tensor x of");
  refused({{"__metadata__", t}}, "__metadata__");
  refused({{"", t}}, "empty");
  refused({{"ids", Tensor::FromVector<int32_t>({2}, {1, 2})}}, "tensor ids");
  refused({{"undefined", Tensor()}}, "tensor undefined");
}

TEST(Safetensors, MissingFileIsNotFound) {
  ScratchDir dir;
  const std::string path = dir / "absent.safetensors";
  Result<NamedTensors> r = ReadSafetensors(path);
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(r.status().message(), path));
}

// Each malformed file is refused with the file (and, where there is one, the tensor) named.
struct Malformed {
  const char* what;
  std::string bytes;
  std::string expected;  // a part of the message besides the path
};

TEST(Safetensors, MalformedFilesAreRefusedNamingFileAndTensor) {
  ScratchDir dir;
  const std::string buf24(24, '\x11');
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})";
  std::string past_eof;
  PutLE(&past_eof, 1000, 8);
  past_eof += "{}";
  const std::vector<Malformed> cases = {
      {"shorter than the length field", std::string("\x02\x00\x00", 3), "8-byte header length"},
      {"header length past the end", past_eof, "header length 1000"},
      {"bad JSON", SafetensorsBytes("{\"a\":", buf24), "not valid JSON"},
      {"header not an object", SafetensorsBytes("[1,2]", buf24), "not a JSON object"},
      {"offsets past the buffer",
       SafetensorsBytes(R"({"a":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}})", buf24), "tensor a of"},
      {"end before begin", SafetensorsBytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", buf24),
       "data_offsets [8, 4)"},
      {"size mismatch", SafetensorsBytes(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,24]}})", buf24),
       "needs 16"},
      {"overlap",
       SafetensorsBytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                        buf24),
       "tensors a [0, 16) and b [8, 16) overlap"},
      {"unsupported dtype", SafetensorsBytes(R"({"ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]}})", buf24),
       "tensor ids of"},
      {"negative shape", SafetensorsBytes(R"({"a":{"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]}})", buf24),
       "tensor a of"},
      {"missing dtype", SafetensorsBytes(R"({"a":{"shape":[2,3],"data_offsets":[0,24]}})", buf24), "\"dtype\""},
      {"metadata not strings", SafetensorsBytes("{" + ok_entry + R"(,"__metadata__":{"n":1}})", buf24), "__metadata__"},
      {"overflowing shape",
       SafetensorsBytes(R"({"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,24]}})", buf24),
       "overflowing"},
  };
  for (const Malformed& c : cases) {
    const std::string path = dir / "bad.safetensors";
    WriteFileBytes(path, c.bytes);
    Result<NamedTensors> r = ReadSafetensors(path);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_TRUE(Contains(r.status().message(), path)) << c.what;
    EXPECT_TRUE(Contains(r.status().message(), c.expected)) << c.what;
  }
  // The unsupported dtype is named as such.
  WriteFileBytes(dir / "i64.safetensors", cases[8].bytes);
  EXPECT_TRUE(Contains(ReadSafetensors(dir / "i64.safetensors").status().message(), "dtype I64 is not supported"));
}

TEST(Safetensors, EveryTruncationIsRefused) {
  ScratchDir dir;
  const std::string path = dir / "full.safetensors";
  ASSERT_TRUE(WriteSafetensors(path,
                               {{"a", Tensor::FromVector<float>({3}, RandomFloats(3, 8))},
                                {"b", Tensor::FromVector<float>({2, 2}, RandomFloats(4, 9))}},
                               {{"format", "pt"}})
                  .ok());
  const std::string bytes = ReadFileBytes(path);
  const std::string cut = dir / "cut.safetensors";
  for (size_t len = 0; len < bytes.size(); ++len) {
    WriteFileBytes(cut, bytes.substr(0, len));
    Result<NamedTensors> r = ReadSafetensors(cut);
    EXPECT_FALSE(r.ok()) << "truncated to " << len << " of " << bytes.size() << " bytes";
    if (!r.ok()) {
      EXPECT_TRUE(Contains(r.status().message(), cut));
    }
  }
}

}  // namespace
}  // namespace baton
