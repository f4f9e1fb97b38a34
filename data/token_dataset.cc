#include "data/token_dataset.h"

#include <glob.h>

#include <algorithm>

namespace baton {

const uint16_t* TokenWindows::operator[](uint64_t index) const {
  BATON_CHECK(index < count(), "window " << index << " of " << count());
  // The shard holding the window: the last one whose first window is <= index.
  const size_t shard =
      std::upper_bound(first_window_.begin(), first_window_.end(), index) - first_window_.begin() - 1;
  return shard_tokens_[shard] + (index - first_window_[shard]) * static_cast<uint64_t>(seq_len_);
}

Result<TokenDataset> TokenDataset::Open(const std::string& pattern, int vocab) {
  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), GLOB_ERR, nullptr, &matches);
  std::vector<std::string> paths;
  if (rc == 0) paths.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  globfree(&matches);
  if (rc == GLOB_NOMATCH || (rc == 0 && paths.empty())) {
    return Status::NotFound("no token shards match \"" + pattern + "\" (run `baton prepare` to make some?)");
  }
  if (rc != 0) return Status::IOError("cannot expand the glob \"" + pattern + "\" (read error or out of memory)");
  std::sort(paths.begin(), paths.end());
  TokenDataset dataset;
  dataset.glob_ = pattern;
  for (const std::string& path : paths) {
    BATON_ASSIGN_OR_RETURN(TokenShard shard, TokenShard::Open(path, vocab));
    dataset.total_tokens_ += shard.size();
    dataset.shards_.push_back(std::move(shard));
  }
  return dataset;
}

TokenWindows TokenDataset::Windows(int seq_len) const {
  BATON_CHECK(seq_len > 0, "seq_len " << seq_len);
  TokenWindows windows;
  windows.seq_len_ = seq_len;
  windows.first_window_.push_back(0);
  for (const TokenShard& shard : shards_) {
    // Windows start at k * seq_len and need seq_len + 1 tokens.
    const uint64_t n = shard.size() == 0 ? 0 : (shard.size() - 1) / static_cast<uint64_t>(seq_len);
    if (n == 0) continue;
    windows.shard_tokens_.push_back(shard.tokens());
    windows.first_window_.push_back(windows.first_window_.back() + n);
  }
  return windows;
}

}  // namespace baton
