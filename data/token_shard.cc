#include "data/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "runtime/atomic_file.h"
#include "runtime/file_descriptor.h"

namespace baton {

Result<TokenShard> TokenShard::Open(const std::string& path, int vocab) {
  if (vocab <= 0 || vocab > 65536) {
    return Status::InvalidArgument(path + ": model.vocab " + std::to_string(vocab) +
                                   " does not fit uint16 tokens (expected 1..65536)");
  }
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::NotFound(path + ": cannot open token shard: " + ErrnoText());
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Status::IOError(path + ": stat failed: " + ErrnoText());
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < kTokenShardHeaderBytes) {
    return Status::Corruption(path + ": file is " + std::to_string(file_bytes) + " bytes, shorter than the " +
                              std::to_string(kTokenShardHeaderBytes) + "-byte llm.c shard header");
  }
  TokenShard shard;
  shard.path_ = path;
  shard.mapping_bytes_ = file_bytes;
  shard.mapping_ = mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (shard.mapping_ == MAP_FAILED) {
    shard.mapping_ = nullptr;
    return Status::IOError(path + ": mmap failed: " + ErrnoText());
  }
  int32_t header[kTokenShardHeaderInts];
  std::memcpy(header, shard.mapping_, sizeof(header));
  if (header[0] != kTokenShardMagic) {
    return Status::Corruption(path + ": magic is " + std::to_string(header[0]) + ", expected " +
                              std::to_string(kTokenShardMagic) + " (not an llm.c token shard)");
  }
  if (header[1] != kTokenShardVersion) {
    return Status::Corruption(path + ": version is " + std::to_string(header[1]) + ", expected " +
                              std::to_string(kTokenShardVersion) + " (uint16 tokens)");
  }
  if (header[2] < 0) {
    return Status::Corruption(path + ": header token count is " + std::to_string(header[2]) + ", expected >= 0");
  }
  shard.count_ = static_cast<uint64_t>(header[2]);
  const uint64_t expected_bytes = kTokenShardHeaderBytes + 2 * shard.count_;
  if (file_bytes != expected_bytes) {
    return Status::Corruption(path + ": header says " + std::to_string(shard.count_) + " tokens, so the file should be " +
                              std::to_string(expected_bytes) + " bytes, but it is " + std::to_string(file_bytes) +
                              (file_bytes < expected_bytes ? " (truncated)" : ""));
  }
  shard.tokens_ = reinterpret_cast<const uint16_t*>(static_cast<const char*>(shard.mapping_) + kTokenShardHeaderBytes);
  // The scan below reads the whole file once; tell the kernel so.
  madvise(shard.mapping_, file_bytes, MADV_SEQUENTIAL);
  uint16_t max_token = 0;
  for (uint64_t i = 0; i < shard.count_; ++i) max_token = std::max(max_token, shard.tokens_[i]);
  if (shard.count_ > 0 && max_token >= vocab) {
    for (uint64_t i = 0; i < shard.count_; ++i) {
      if (shard.tokens_[i] >= vocab) {
        return Status::Corruption(path + ": token " + std::to_string(shard.tokens_[i]) + " at position " +
                                  std::to_string(i) + " is >= model.vocab " + std::to_string(vocab));
      }
    }
  }
  madvise(shard.mapping_, file_bytes, MADV_RANDOM);  // training reads windows in random order
  return shard;
}

TokenShard::TokenShard(TokenShard&& other) noexcept { *this = std::move(other); }

TokenShard& TokenShard::operator=(TokenShard&& other) noexcept {
  if (this != &other) {
    Unmap();
    path_ = std::move(other.path_);
    mapping_ = other.mapping_;
    mapping_bytes_ = other.mapping_bytes_;
    tokens_ = other.tokens_;
    count_ = other.count_;
    other.mapping_ = nullptr;
    other.tokens_ = nullptr;
    other.mapping_bytes_ = 0;
    other.count_ = 0;
  }
  return *this;
}

TokenShard::~TokenShard() { Unmap(); }

void TokenShard::Unmap() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_bytes_);
  mapping_ = nullptr;
}

Result<std::vector<uint16_t>> ReadTokenShard(const std::string& path, int vocab) {
  BATON_ASSIGN_OR_RETURN(TokenShard shard, TokenShard::Open(path, vocab));
  return std::vector<uint16_t>(shard.tokens(), shard.tokens() + shard.size());
}

Status WriteTokenShard(const std::string& path, const std::vector<uint16_t>& tokens) {
  if (tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return Status::InvalidArgument(path + ": " + std::to_string(tokens.size()) +
                                   " tokens do not fit one shard (the header count is int32)");
  }
  int32_t header[kTokenShardHeaderInts] = {};
  header[0] = kTokenShardMagic;
  header[1] = kTokenShardVersion;
  header[2] = static_cast<int32_t>(tokens.size());
  return WriteFileAtomically(
      path, {std::string_view(reinterpret_cast<const char*>(header), sizeof(header)),
             std::string_view(reinterpret_cast<const char*>(tokens.data()), tokens.size() * sizeof(uint16_t))});
}

}  // namespace baton
