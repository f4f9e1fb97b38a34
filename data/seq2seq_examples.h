// UniLM sequence-to-sequence (Dong et al. 2019) on the examples `baton prepare
// --seq2seq` writes: <|endoftext|> source <|sep|> target, one after another.
// An example's window is those tokens followed by <|endoftext|> (the next
// example's first token: the target's end). As in causal LM the input is the
// window without its last token and the targets are the window shifted by
// one, but only the target part has targets: the positions from <|sep|> on
// predict the target's tokens and the end. The source and <|sep|> form the
// bidirectional prefix; the target attends to the prefix and to its own past.
//
// An example longer than seq_len + 1 window tokens is cut: the source keeps
// its first tokens, as many as leave room for the whole target and its end,
// but never fewer than half the window; the target is then cut at the
// window's end. A span without <|sep|> (not written by
// prepare --seq2seq) is skipped and counted.
#pragma once

#include <vector>

#include "data/document_spans.h"
#include "data/example_set.h"

namespace baton {

class Seq2SeqExamples : public ExampleSet {
 public:
  // `data` must outlive the set. seq_len >= 4.
  Seq2SeqExamples(const TokenDataset& data, int seq_len, int eot_token, int sep_token);

  uint64_t count() const override { return examples_.size(); }
  int seq_len() const override { return seq_len_; }
  bool has_masks() const override { return true; }
  void Fill(uint64_t index, uint64_t epoch, ExampleRow* row) const override;
  std::string Describe() const override;
  // Spans skipped because they hold no sep_token.
  uint64_t skipped() const { return skipped_; }

 private:
  struct Example {
    TokenSpan span;     // from the leading <|endoftext|> to the target's last token
    uint64_t sep = 0;   // offset of the first sep_token in span
  };
  int seq_len_, eot_, sep_;
  std::vector<Example> examples_;
  uint64_t skipped_ = 0;
};

}  // namespace baton
