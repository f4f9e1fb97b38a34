#include "data/seq2seq_text.h"

#include <algorithm>

#include "data/bpe_tokenizer.h"

namespace baton {
namespace {

bool IsBlank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
  });
}

// The start of a bad line for an error message, TABs shown as \t, cut at a
// UTF-8 character boundary so the message stays valid text.
std::string Excerpt(std::string_view line) {
  constexpr size_t kMax = 60;
  size_t end = std::min(line.size(), kMax);
  while (end > 0 && end < line.size() && (static_cast<unsigned char>(line[end]) & 0xC0) == 0x80) --end;
  std::string out;
  for (char c : line.substr(0, end)) out += c == '\t' ? std::string("\\t") : std::string(1, c);
  return "\"" + out + (end < line.size() ? "...\"" : "\"");
}

}  // namespace

Result<Seq2SeqText> ParseSeq2SeqText(std::string_view text, const std::string& path) {
  // A byte order mark (editors on Windows write one) would otherwise become
  // part of the first source.
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  Seq2SeqText parsed;
  int64_t line_number = 0;
  for (size_t begin = 0; begin < text.size();) {
    const size_t newline = text.find('\n', begin);
    const size_t end = newline == std::string_view::npos ? text.size() : newline;
    std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (IsBlank(line)) {
      ++parsed.skipped_blank_lines;
      continue;
    }
    const size_t tab = line.find('\t');
    const int64_t tabs = std::count(line.begin(), line.end(), '\t');
    if (tabs != 1) {
      const std::string where = path + ":" + std::to_string(line_number) + ": ";
      const std::string found = tabs == 0 ? "has no TAB" : "has " + std::to_string(tabs) + " TABs";
      return Status::InvalidArgument(where + "seq2seq line " + found +
                                     "; expected SOURCE<TAB>TARGET with exactly one TAB: " + Excerpt(line));
    }
    parsed.examples.push_back({line_number, line.substr(0, tab), line.substr(tab + 1)});
  }
  return parsed;
}

std::string Seq2SeqExampleName(const std::string& document_name, int64_t line) {
  return document_name + ":" + std::to_string(line);
}

void AppendSeq2SeqExample(const BpeTokenizer& tokenizer, int sep_token, const Seq2SeqExample& example,
                          std::vector<int>* ids) {
  ids->push_back(tokenizer.end_of_text());
  tokenizer.EncodeAppend(example.source, ids);
  ids->push_back(sep_token);
  tokenizer.EncodeAppend(example.target, ids);
}

}  // namespace baton
