#include "data/document_spans.h"

namespace baton {

std::vector<TokenSpan> DocumentSpans(const TokenDataset& data, int eot_token) {
  std::vector<TokenSpan> spans;
  for (size_t s = 0; s < data.num_shards(); ++s) {
    const uint16_t* t = data.shard(s).tokens();
    const uint64_t n = data.shard(s).size();
    uint64_t begin = 0;
    for (uint64_t i = 1; i <= n; ++i) {
      if (i < n && t[i] != eot_token) continue;
      spans.push_back({t + begin, i - begin});
      begin = i;
    }
  }
  return spans;
}

}  // namespace baton
