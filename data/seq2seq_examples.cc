#include "data/seq2seq_examples.h"

#include <algorithm>

namespace baton {

Seq2SeqExamples::Seq2SeqExamples(const TokenDataset& data, int seq_len, int eot_token, int sep_token)
    : seq_len_(seq_len), eot_(eot_token), sep_(sep_token) {
  BATON_CHECK(seq_len >= 4, "seq2seq seq_len " << seq_len);
  for (const TokenSpan& span : DocumentSpans(data, eot_token)) {
    const uint16_t* sep = std::find(span.tokens, span.tokens + span.size, static_cast<uint16_t>(sep_token));
    if (sep == span.tokens + span.size) {
      ++skipped_;
      continue;
    }
    examples_.push_back({span, static_cast<uint64_t>(sep - span.tokens)});
  }
}

void Seq2SeqExamples::Fill(uint64_t index, uint64_t, ExampleRow* row) const {
  const Example& e = examples_[index];
  const uint64_t window = static_cast<uint64_t>(seq_len_) + 1;
  // The window: source (through sep) + target + the end token, the source cut
  // when the whole does not fit and the source is the longer half.
  std::vector<int32_t> w;
  w.reserve(std::min<uint64_t>(e.span.size + 1, window));
  uint64_t source = e.sep;  // tokens before sep
  if (e.span.size + 1 > window) {
    // Room for the target and its end first, but the source keeps at least half the window.
    const uint64_t target = e.span.size - e.sep - 1 + 1;
    const uint64_t room = window > target + 1 ? window - 1 - target : 0;
    source = std::min(source, std::max(window / 2 - 1, room));
  }
  w.insert(w.end(), e.span.tokens, e.span.tokens + source);
  w.push_back(sep_);
  const int prefix = static_cast<int>(w.size());
  for (uint64_t i = e.sep + 1; i < e.span.size && w.size() < window; ++i) w.push_back(e.span.tokens[i]);
  if (w.size() < window) w.push_back(eot_);

  const int length = static_cast<int>(w.size()) - 1;  // inputs: all but the window's last token
  std::copy(w.begin(), w.begin() + length, row->tokens);
  std::fill(row->tokens + length, row->tokens + seq_len_, eot_);  // padding: never attended to
  std::fill(row->targets, row->targets + seq_len_, kExampleNoTarget);
  for (int t = prefix - 1; t < length; ++t) row->targets[t] = w[static_cast<size_t>(t) + 1];
  row->length = length;
  row->prefix = prefix;
}

std::string Seq2SeqExamples::Describe() const {
  return "seq2seq examples (<|endoftext|> source <|sep|> target)";
}

}  // namespace baton
