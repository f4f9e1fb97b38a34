// Which layers of the model's list each pipeline rank holds. The list is
// [embedding, blocks.0 .. blocks.{L-1}, head] (ModelSpec::list_size() entries);
// it is cut into stages x virtual_stages contiguous chunks, and global chunk c
// lives on pipeline rank c % stages as its local chunk c / stages (so with one
// virtual stage, chunk r is simply stage r). Every layer is in exactly one chunk.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "layers/model_spec.h"
#include "runtime/status.h"

namespace baton {

struct StageLayout {
  int stages = 1;
  int virtual_stages = 1;
  // chunks[c] = [first, last) range of the layer list for global chunk c.
  std::vector<std::pair<int64_t, int64_t>> chunks;

  int num_chunks() const { return stages * virtual_stages; }
  int rank_of_chunk(int c) const { return c % stages; }
  int global_chunk(int rank, int local_chunk) const { return local_chunk * stages + rank; }
  // "[e 0-5 | 6-11 | 12-17 | 18-23 l]": block ranges per chunk, e/l for embedding and head.
  std::string Describe(const ModelSpec& spec) const;
  // One chunk: "e 0-5", "6-11", "18-23 l".
  std::string DescribeChunk(const ModelSpec& spec, int chunk) const;
  // The chunks of one pipeline rank: "e 0-2 | 9-11" with virtual stages.
  std::string DescribeRank(const ModelSpec& spec, int rank) const;
};

// The default: chunks balanced by forward FLOPs per token at `seq_len` (a block, and
// the head's 2 x hidden x padded_vocab, which for small models outweighs many
// blocks; the embedding is counted as one block of work). Minimises the largest
// chunk, then evens out the rest. Fails when there are fewer layers than chunks.
Result<StageLayout> BalancedStageLayout(const ModelSpec& spec, int64_t seq_len, int stages, int virtual_stages);

// An explicit layout: block ranges per chunk in global chunk order, separated by
// '|', e.g. "0-5 | 6-11 | 12-17 | 18-23" (a range "a-b" is inclusive; a single
// "a" is one block; an empty chunk is allowed only for the first or last chunk,
// which also hold the embedding and head). Errors name the gap or overlap.
Result<StageLayout> ParseStageLayout(const ModelSpec& spec, const std::string& text, int stages, int virtual_stages);

}  // namespace baton
