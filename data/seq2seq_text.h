// The text format of `baton prepare --seq2seq` and how one example is laid
// out in the token stream.
//
// A file is UTF-8 text; each line (split at '\n', one trailing '\r'
// stripped, a UTF-8 byte order mark at the start of the file dropped) that
// is not empty or only whitespace is one example "SOURCE<TAB>TARGET" with
// exactly one TAB. SOURCE and TARGET are taken verbatim (no trimming) and
// may be empty. An example is written as
//   <|endoftext|> tokens(SOURCE) SEP tokens(TARGET)
// so a reader finds the source between an example's leading <|endoftext|>
// and the first SEP, and the target after it up to the next <|endoftext|>
// (or the end of the shard). SEP must be an id the tokenizer never produces
// for text, so the split is unambiguous.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/status.h"

namespace baton {

class BpeTokenizer;

struct Seq2SeqExample {
  int64_t line = 0;  // 1-based line number in its file
  std::string_view source;
  std::string_view target;
};

struct Seq2SeqText {
  std::vector<Seq2SeqExample> examples;  // views into the parsed text
  int64_t skipped_blank_lines = 0;       // empty or whitespace-only lines
};

// Parses `text` (the contents of `path`, named in errors as "PATH:LINE: ...").
// A line without a TAB or with more than one is an error.
Result<Seq2SeqText> ParseSeq2SeqText(std::string_view text, const std::string& path);

// The name an example is split between validation and training by:
// "<document name>:<line>", independent of the order of the inputs.
std::string Seq2SeqExampleName(const std::string& document_name, int64_t line);

// Appends <|endoftext|> tokens(source) sep tokens(target) to `ids`.
void AppendSeq2SeqExample(const BpeTokenizer& tokenizer, int sep_token, const Seq2SeqExample& example,
                          std::vector<int>* ids);

}  // namespace baton
