#include "data/token_shard.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "tests/data/test_files.h"

namespace baton {
namespace {

// An llm.c shard assembled byte by byte (little-endian), independent of WriteTokenShard.
std::string ShardBytes(int32_t magic, int32_t version, int32_t count, const std::vector<uint16_t>& tokens) {
  std::string bytes(1024, '\0');
  const int32_t header[3] = {magic, version, count};
  std::memcpy(&bytes[0], header, sizeof(header));
  for (uint16_t t : tokens) {
    bytes.push_back(static_cast<char>(t & 0xFF));
    bytes.push_back(static_cast<char>(t >> 8));
  }
  return bytes;
}

const std::vector<uint16_t> kTokens = {50256, 464, 3290, 373, 257, 1332, 13, 198, 7, 50255, 1};

TEST(TokenShard, ReadsHandWrittenLlmcShard) {
  ScratchDir dir;
  const std::string path = dir / "a.bin";
  WriteFileBytes(path, ShardBytes(20240520, 1, static_cast<int32_t>(kTokens.size()), kTokens));
  Result<TokenShard> shard = TokenShard::Open(path, 50257);
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  EXPECT_EQ(shard->path(), path);
  ASSERT_EQ(shard->size(), kTokens.size());
  EXPECT_EQ(std::vector<uint16_t>(shard->tokens(), shard->tokens() + shard->size()), kTokens);
}

TEST(TokenShard, WriteThenReadRoundTrip) {
  ScratchDir dir;
  const std::string path = dir / "round.bin";
  ASSERT_TRUE(WriteTokenShard(path, kTokens).ok());
  // The bytes are exactly llm.c's layout.
  EXPECT_EQ(ReadFileBytes(path), ShardBytes(20240520, 1, static_cast<int32_t>(kTokens.size()), kTokens));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  Result<std::vector<uint16_t>> read = ReadTokenShard(path, 50257);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, kTokens);
  // Overwriting replaces the whole file.
  ASSERT_TRUE(WriteTokenShard(path, {7, 8}).ok());
  EXPECT_EQ(std::filesystem::file_size(path), 1024u + 4u);
}

void ExpectError(const std::string& path, int vocab, const std::vector<std::string>& fragments) {
  Result<TokenShard> shard = TokenShard::Open(path, vocab);
  ASSERT_FALSE(shard.ok()) << path << " opened";
  for (const std::string& f : fragments) {
    EXPECT_NE(shard.status().message().find(f), std::string::npos)
        << "message \"" << shard.status().message() << "\" lacks \"" << f << "\"";
  }
  // ReadTokenShard reports the same problem.
  EXPECT_EQ(ReadTokenShard(path, vocab).status().message(), shard.status().message());
}

TEST(TokenShard, WrongMagicNamesFileAndExpectedMagic) {
  ScratchDir dir;
  const std::string path = dir / "magic.bin";
  WriteFileBytes(path, ShardBytes(20240521, 1, 3, {1, 2, 3}));
  ExpectError(path, 50257, {path, "20240521", "20240520"});
}

TEST(TokenShard, WrongVersionNamesFileAndVersion) {
  ScratchDir dir;
  const std::string path = dir / "version.bin";
  WriteFileBytes(path, ShardBytes(20240520, 2, 3, {1, 2, 3}));
  ExpectError(path, 50257, {path, "version is 2", "expected 1"});
}

TEST(TokenShard, TruncatedFileIsAnError) {
  ScratchDir dir;
  const std::string path = dir / "truncated.bin";
  std::string bytes = ShardBytes(20240520, 1, 4, {1, 2, 3, 4});
  bytes.resize(bytes.size() - 3);
  WriteFileBytes(path, bytes);
  ExpectError(path, 50257, {path, "4 tokens", "1032 bytes", "1029", "truncated"});

  const std::string header_only = dir / "short_header.bin";
  WriteFileBytes(header_only, std::string(100, 'x'));
  ExpectError(header_only, 50257, {header_only, "100 bytes", "1024-byte"});
}

TEST(TokenShard, TrailingBytesAreAnError) {
  ScratchDir dir;
  const std::string path = dir / "long.bin";
  WriteFileBytes(path, ShardBytes(20240520, 1, 2, {1, 2, 3}));
  ExpectError(path, 50257, {path, "2 tokens", "1028 bytes", "1030"});
}

TEST(TokenShard, TokenAtOrAboveVocabNamesFilePositionAndVocab) {
  ScratchDir dir;
  const std::string path = dir / "vocab.bin";
  WriteFileBytes(path, ShardBytes(20240520, 1, 5, {10, 50256, 50257, 60000, 3}));
  ExpectError(path, 50257, {path + ": token 50257 at position 2 is >= model.vocab 50257"});
  // The same file is fine for a larger vocabulary.
  EXPECT_TRUE(TokenShard::Open(path, 65536).ok());
}

TEST(TokenShard, MissingFileIsNotFound) {
  ScratchDir dir;
  Result<TokenShard> shard = TokenShard::Open(dir / "nope.bin", 50257);
  ASSERT_FALSE(shard.ok());
  EXPECT_EQ(shard.status().code(), Status::Code::kNotFound);
  EXPECT_NE(shard.status().message().find("nope.bin"), std::string::npos);
}

TEST(TokenShard, EmptyShardIsValid) {
  ScratchDir dir;
  ASSERT_TRUE(WriteTokenShard(dir / "empty.bin", {}).ok());
  Result<TokenShard> shard = TokenShard::Open(dir / "empty.bin", 50257);
  ASSERT_TRUE(shard.ok());
  EXPECT_EQ(shard->size(), 0u);
}

TEST(TokenShard, MovedShardKeepsItsMapping) {
  ScratchDir dir;
  ASSERT_TRUE(WriteTokenShard(dir / "m.bin", kTokens).ok());
  Result<TokenShard> shard = TokenShard::Open(dir / "m.bin", 50257);
  ASSERT_TRUE(shard.ok());
  std::vector<TokenShard> shards;
  shards.push_back(std::move(*shard));
  shards.reserve(16);  // forces another move
  EXPECT_EQ(shards[0].tokens()[1], 464);
  EXPECT_EQ(shards[0].size(), kTokens.size());
}

}  // namespace
}  // namespace baton
