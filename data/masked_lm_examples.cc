#include "data/masked_lm_examples.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/rng.h"

namespace baton {
namespace {
// Each example draws from its own block of 2^24 counters of the epoch's stream
// (at most 3 draws per position, and seq_len <= 2^20 by the config's bounds).
constexpr int kDrawsPerExampleLog2 = 24;
}  // namespace

MaskedLmExamples::MaskedLmExamples(const TokenDataset& data, const MaskedLmOptions& options) : options_(options) {
  BATON_CHECK(options.seq_len >= 2 && options.seq_len <= (1 << 20), "masked LM seq_len " << options.seq_len);
  BATON_CHECK(options.vocab > 0 && options.mask_fraction > 0 && options.mask_fraction <= 1 &&
                  options.mask_token_fraction + options.random_token_fraction <= 1 + 1e-12,
              "masked LM options");
  const uint64_t room = static_cast<uint64_t>(options.seq_len) - 1;
  for (const TokenSpan& doc : DocumentSpans(data, options.eot_token)) {
    const bool starts_with_eot = doc.size > 0 && doc.tokens[0] == options.eot_token;
    const uint16_t* t = doc.tokens + (starts_with_eot ? 1 : 0);
    const uint64_t n = doc.size - (starts_with_eot ? 1 : 0);
    // ceil(n / room) chunks of nearly equal size: no short tail chunk that would be mostly padding.
    const uint64_t k = (n + room - 1) / room;
    for (uint64_t c = 0, begin = 0; c < k; ++c) {
      const uint64_t end = n * (c + 1) / k;
      chunks_.push_back({t + begin, end - begin});
      begin = end;
    }
  }
}

void MaskedLmExamples::Fill(uint64_t index, uint64_t epoch, ExampleRow* row) const {
  const MaskedLmOptions& o = options_;
  const TokenSpan& chunk = chunks_[index];
  const int n = static_cast<int>(chunk.size), length = n + 1;
  row->tokens[0] = o.eot_token;
  std::copy(chunk.tokens, chunk.tokens + n, row->tokens + 1);
  std::fill(row->tokens + length, row->tokens + o.seq_len, o.eot_token);  // padding: never attended to
  std::fill(row->targets, row->targets + o.seq_len, kExampleNoTarget);
  row->length = length;
  row->prefix = o.seq_len;  // bidirectional

  RandomStream rng(o.seed, StreamId("baton.data.masked_lm") + epoch, index << kDrawsPerExampleLog2);
  const int selected = std::max(1, static_cast<int>(std::lround(o.mask_fraction * n)));
  // The first `selected` entries of a partial Fisher-Yates shuffle of positions 1..n.
  std::vector<int> positions(static_cast<size_t>(n));
  std::iota(positions.begin(), positions.end(), 1);
  for (int k = 0; k < selected; ++k) {
    const int j = k + static_cast<int>(rng.Below(static_cast<uint64_t>(n - k)));
    std::swap(positions[static_cast<size_t>(k)], positions[static_cast<size_t>(j)]);
    const int p = positions[static_cast<size_t>(k)];
    row->targets[p] = row->tokens[p];
    const double u = rng.Uniform();
    if (u < o.mask_token_fraction) {
      row->tokens[p] = o.mask_token;
    } else if (u < o.mask_token_fraction + o.random_token_fraction) {
      int32_t r;
      do r = static_cast<int32_t>(rng.Below(static_cast<uint64_t>(o.vocab)));
      while (r == o.eot_token || r == o.mask_token || r == o.sep_token);
      row->tokens[p] = r;
    }
  }
}

std::string MaskedLmExamples::Describe() const {
  return "masked-LM examples (document chunks of at most seq_len - 1 = " + std::to_string(options_.seq_len - 1) +
         " tokens)";
}

}  // namespace baton
