// Where the documents of a dataset are. `baton prepare` starts every document
// (and every seq2seq example) with <|endoftext|>; a span runs from one such
// token to the next, or to the shard's end. A shard that does not start with
// one (a document continued from the previous shard) starts a span of its own.
#pragma once

#include <cstdint>
#include <vector>

#include "data/token_dataset.h"

namespace baton {

struct TokenSpan {
  const uint16_t* tokens = nullptr;  // into the dataset's mapped shards
  uint64_t size = 0;
};

// Every document of `data`, in shard order then position order. One pass over
// the tokens; `data` must outlive the spans.
std::vector<TokenSpan> DocumentSpans(const TokenDataset& data, int eot_token);

}  // namespace baton
