// llm.c token shards: a header of 256 int32 (magic 20240520, version 1,
// token count, the rest zero), then the tokens as uint16; the file is
// exactly 1024 + 2 * count bytes. Little-endian, as llm.c writes them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/status.h"

namespace baton {

constexpr int32_t kTokenShardMagic = 20240520;
constexpr int32_t kTokenShardVersion = 1;
constexpr int kTokenShardHeaderInts = 256;
constexpr size_t kTokenShardHeaderBytes = kTokenShardHeaderInts * sizeof(int32_t);

// A validated shard, memory-mapped read-only: datasets of billions of tokens
// cost address space, not memory. Move-only.
class TokenShard {
 public:
  // Maps `path` and checks the header, the file size and that every token is
  // < vocab (a bad id would otherwise index past the embedding table).
  static Result<TokenShard> Open(const std::string& path, int vocab);

  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;
  ~TokenShard();

  const std::string& path() const { return path_; }
  uint64_t size() const { return count_; }
  const uint16_t* tokens() const { return tokens_; }

 private:
  TokenShard() = default;
  void Unmap();

  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  const uint16_t* tokens_ = nullptr;
  uint64_t count_ = 0;
};

// Reads a whole shard into memory, with the checks of TokenShard::Open.
Result<std::vector<uint16_t>> ReadTokenShard(const std::string& path, int vocab);

// Writes `tokens` as a shard: to path + ".tmp", flushed to disk, then renamed
// over `path`, so a reader never sees half a shard.
Status WriteTokenShard(const std::string& path, const std::vector<uint16_t>& tokens);

}  // namespace baton
