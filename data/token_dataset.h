// A set of llm.c token shards named by a glob (e.g. "data/brown_train_*.bin"),
// in sorted path order, each validated against the model's vocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/token_shard.h"
#include "runtime/status.h"

namespace baton {

// The non-overlapping training windows of a dataset for one sequence length:
// spans of seq_len + 1 tokens starting every seq_len tokens within a shard
// (each window's last token is the next one's first, so every token is a
// target exactly once); no window crosses a shard's end. Window i is in
// shard order, then position order.
class TokenWindows {
 public:
  uint64_t count() const { return first_window_.back(); }
  int seq_len() const { return seq_len_; }
  // The seq_len + 1 tokens of window `index` (< count()).
  const uint16_t* operator[](uint64_t index) const;

 private:
  friend class TokenDataset;
  int seq_len_ = 0;
  std::vector<const uint16_t*> shard_tokens_;
  std::vector<uint64_t> first_window_;  // per shard, plus the total at the end
};

class TokenDataset {
 public:
  // Opens every file matching `glob` (glob(3)), sorted by path. No match is
  // an error naming the glob.
  static Result<TokenDataset> Open(const std::string& glob, int vocab);

  const std::string& glob() const { return glob_; }
  size_t num_shards() const { return shards_.size(); }
  const TokenShard& shard(size_t i) const { return shards_[i]; }
  uint64_t total_tokens() const { return total_tokens_; }

  // The windows for `seq_len` (> 0). They point into this dataset, which
  // must outlive them.
  TokenWindows Windows(int seq_len) const;

 private:
  std::string glob_;
  std::vector<TokenShard> shards_;
  uint64_t total_tokens_ = 0;
};

}  // namespace baton
