#include "pipeline/stage_layout.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <sstream>

namespace baton {
namespace {

// Forward FLOPs per token of each entry of the layer list.
// (The embedding counts as one block of work.)
std::vector<double> LayerCosts(const ModelSpec& spec, int64_t seq_len) {
  std::vector<double> costs(static_cast<size_t>(spec.list_size()), spec.BlockForwardFlopsPerToken(seq_len));
  costs.back() = spec.HeadForwardFlopsPerToken();
  return costs;
}

std::string BlockRange(int64_t first_block, int64_t last_block) {  // inclusive, may be empty
  if (last_block < first_block) return "";
  if (first_block == last_block) return std::to_string(first_block);
  return std::to_string(first_block) + "-" + std::to_string(last_block);
}

}  // namespace

std::string StageLayout::DescribeChunk(const ModelSpec& spec, int chunk) const {
  auto [first, last] = chunks[chunk];
  std::vector<std::string> parts;
  if (first == 0) parts.push_back("e");
  const int64_t b0 = std::max<int64_t>(first, 1) - 1, b1 = std::min<int64_t>(last, spec.layers + 1) - 2;
  if (b1 >= b0) parts.push_back(BlockRange(b0, b1));
  if (last == spec.list_size()) parts.push_back("l");
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? " " : "") + parts[i];
  return out;
}

std::string StageLayout::DescribeRank(const ModelSpec& spec, int rank) const {
  std::string out;
  for (int v = 0; v < virtual_stages; ++v) out += (v ? " | " : "") + DescribeChunk(spec, global_chunk(rank, v));
  return out;
}

std::string StageLayout::Describe(const ModelSpec& spec) const {
  std::string out = "[";
  for (int c = 0; c < num_chunks(); ++c) out += (c ? " | " : "") + DescribeChunk(spec, c);
  return out + "]";
}

Result<StageLayout> BalancedStageLayout(const ModelSpec& spec, int64_t seq_len, int stages, int virtual_stages) {
  const int chunks = stages * virtual_stages;
  const int64_t n = spec.list_size();
  if (chunks < 1 || n < chunks) {
    return Status::InvalidArgument("cannot cut " + std::to_string(n) + " layers (embedding, " +
                                   std::to_string(spec.layers) + " blocks, head) into " + std::to_string(chunks) +
                                   " pipeline chunks (parallel.stages x parallel.virtual_stages): every chunk needs a layer");
  }
  const std::vector<double> cost = LayerCosts(spec, seq_len);
  std::vector<double> prefix(n + 1, 0);
  for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + cost[i];
  // best[k][i]: cutting the first i layers into k chunks, lexicographically minimising
  // (largest chunk, sum of squared chunk costs).
  struct Best { double max = std::numeric_limits<double>::infinity(), squares = 0; int64_t cut = -1; };
  std::vector<std::vector<Best>> best(chunks + 1, std::vector<Best>(n + 1));
  best[0][0] = {0, 0, 0};
  for (int k = 1; k <= chunks; ++k)
    for (int64_t i = k; i <= n; ++i)
      for (int64_t j = k - 1; j < i; ++j) {
        const Best& prev = best[k - 1][j];
        if (prev.cut < 0) continue;
        const double c = prefix[i] - prefix[j];
        const Best cand{std::max(prev.max, c), prev.squares + c * c, j};
        Best& cur = best[k][i];
        if (cand.max < cur.max * (1 - 1e-12) || (cand.max <= cur.max * (1 + 1e-12) && cand.squares < cur.squares)) cur = cand;
      }
  StageLayout layout;
  layout.stages = stages;
  layout.virtual_stages = virtual_stages;
  layout.chunks.resize(chunks);
  for (int64_t k = chunks, i = n; k > 0; --k) {
    const int64_t j = best[k][i].cut;
    layout.chunks[k - 1] = {j, i};
    i = j;
  }
  return layout;
}

Result<StageLayout> ParseStageLayout(const ModelSpec& spec, const std::string& text, int stages, int virtual_stages) {
  const int chunks = stages * virtual_stages;
  const std::string where = "parallel.stage_layers \"" + text + "\": ";
  std::vector<std::string> parts(1);
  for (char ch : text) {
    if (ch == '|') parts.emplace_back();
    else if (!std::isspace(static_cast<unsigned char>(ch))) parts.back() += ch;
  }
  if (static_cast<int>(parts.size()) != chunks) {
    return Status::InvalidArgument(where + "lists " + std::to_string(parts.size()) + " chunks, but parallel.stages x " +
                                   "parallel.virtual_stages = " + std::to_string(chunks));
  }
  // owner[b] = chunk holding block b, or -1.
  std::vector<int> owner(static_cast<size_t>(spec.layers), -1);
  std::vector<std::pair<int64_t, int64_t>> blocks(chunks, {0, -1});  // inclusive block ranges
  for (int c = 0; c < chunks; ++c) {
    const std::string& p = parts[c];
    if (p.empty()) {
      if (c != 0 && c != chunks - 1)
        return Status::InvalidArgument(where + "chunk " + std::to_string(c) + " is empty; only the first and last " +
                                       "chunks (which hold the embedding and the head) may have no blocks");
      continue;
    }
    int64_t a = -1, b = -1;
    char dash = 0, extra = 0;
    std::istringstream in(p);
    in >> a;
    if (!in.fail() && !in.eof()) in >> dash >> b;
    if (in.fail() || (dash && dash != '-') || (in >> extra) || a < 0 || (dash && b < a)) {
      return Status::InvalidArgument(where + "chunk " + std::to_string(c) + " is \"" + p +
                                     "\"; expected a block index or an inclusive range like 6-11");
    }
    if (!dash) b = a;
    if (b >= spec.layers)
      return Status::InvalidArgument(where + "block " + std::to_string(b) + " does not exist (model.layers = " +
                                     std::to_string(spec.layers) + ")");
    for (int64_t x = a; x <= b; ++x) {
      if (owner[x] >= 0)
        return Status::InvalidArgument(where + "block " + std::to_string(x) + " is in chunk " +
                                       std::to_string(owner[x]) + " and again in chunk " + std::to_string(c));
      owner[x] = c;
    }
    blocks[c] = {a, b};
  }
  for (int64_t x = 0; x < spec.layers; ++x)
    if (owner[x] < 0) return Status::InvalidArgument(where + "block " + std::to_string(x) + " is on no stage");
  StageLayout layout;
  layout.stages = stages;
  layout.virtual_stages = virtual_stages;
  int64_t next = 0;  // list index: block b is entry b + 1
  for (int c = 0; c < chunks; ++c) {
    const bool has_blocks = blocks[c].second >= blocks[c].first;
    if (has_blocks && blocks[c].first + 1 != std::max<int64_t>(next, 1))
      return Status::InvalidArgument(where + "chunks must hold consecutive blocks in order; chunk " + std::to_string(c) +
                                     " starts at block " + std::to_string(blocks[c].first) + " but the previous " +
                                     "chunks end at block " + std::to_string(std::max<int64_t>(next, 1) - 2));
    const int64_t first = next;
    int64_t last = has_blocks ? blocks[c].second + 2 : std::max<int64_t>(next, c == 0 ? 1 : next);
    if (c == chunks - 1) last = spec.list_size();
    layout.chunks.push_back({first, last});
    next = last;
  }
  return layout;
}

}  // namespace baton
