// Masked language modelling (BERT, RoFormer). Every document (document_spans.h)
// is cut into the fewest chunks of at most seq_len - 1 tokens, of nearly equal
// sizes (no short tail chunk that would be mostly padding); an example is
//   <|endoftext|> chunk [padding]
// with the leading token playing BERT's [CLS] (it is never selected). Of the
// chunk's n tokens, max(1, round(mask_fraction * n)) positions are selected
// uniformly at random; each selected input becomes mask_token with probability
// mask_token_fraction, a random non-special token with probability
// random_token_fraction, and stays itself otherwise (BERT's 80/10/10). Only
// selected positions have a target: their original token. Attention is
// bidirectional over the example's real tokens.
//
// The selection is a pure function of (seed, epoch, example index): a fresh
// masking every epoch (RoBERTa's dynamic masking), the same on every rank and
// after a resume, whatever the data-parallel layout.
#pragma once

#include <vector>

#include "data/document_spans.h"
#include "data/example_set.h"

namespace baton {

struct MaskedLmOptions {
  int seq_len = 128;  // >= 2
  int vocab = 0;      // real vocabulary: random replacements are drawn below it
  int eot_token = 50256, mask_token = 50257, sep_token = 50258;  // never drawn as random replacements
  double mask_fraction = 0.15, mask_token_fraction = 0.8, random_token_fraction = 0.1;
  uint64_t seed = 0;
};

class MaskedLmExamples : public ExampleSet {
 public:
  // `data` must outlive the set.
  MaskedLmExamples(const TokenDataset& data, const MaskedLmOptions& options);

  uint64_t count() const override { return chunks_.size(); }
  int seq_len() const override { return options_.seq_len; }
  bool has_masks() const override { return true; }
  void Fill(uint64_t index, uint64_t epoch, ExampleRow* row) const override;
  std::string Describe() const override;

 private:
  MaskedLmOptions options_;
  std::vector<TokenSpan> chunks_;  // document tokens without the leading <|endoftext|>
};

}  // namespace baton
