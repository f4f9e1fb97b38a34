#include "data/gpt2_pretokenizer.h"

#include "data/unicode_categories.h"
#include "data/utf8.h"

namespace baton {
namespace {

enum class CharClass { kLetter, kNumber, kSpace, kOther };

struct Char {
  char32_t code_point;
  int length;
  CharClass cls;
};

Char CharAt(std::string_view text, size_t pos) {
  const Utf8CodePoint u = DecodeUtf8At(text, pos);
  CharClass cls = CharClass::kOther;
  if (u.valid) {
    if (IsUnicodeLetter(u.code_point)) {
      cls = CharClass::kLetter;
    } else if (IsUnicodeNumber(u.code_point)) {
      cls = CharClass::kNumber;
    } else if (IsJsWhitespace(u.code_point)) {
      cls = CharClass::kSpace;
    }
  }
  return {u.code_point, u.length, cls};
}

// Length in bytes of a contraction ('s 't 're 've 'm 'll 'd, lower case only
// as in the regex) at text[pos], or 0.
size_t ContractionLength(std::string_view text, size_t pos) {
  if (text[pos] != '\'' || pos + 1 >= text.size()) return 0;
  const char a = text[pos + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (pos + 2 >= text.size()) return 0;
  const char b = text[pos + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// End of the run of characters of class `cls` starting at `pos`.
size_t RunEnd(std::string_view text, size_t pos, CharClass cls) {
  while (pos < text.size()) {
    const Char c = CharAt(text, pos);
    if (c.cls != cls) break;
    pos += c.length;
  }
  return pos;
}

// End of the piece starting at `pos` (the first regex alternative that matches).
size_t PieceEnd(std::string_view text, size_t pos) {
  if (size_t n = ContractionLength(text, pos)) return pos + n;
  const Char c = CharAt(text, pos);
  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': one optional U+0020, then a run of one class.
  if (c.code_point == ' ' && pos + 1 < text.size()) {
    const Char next = CharAt(text, pos + 1);
    if (next.cls != CharClass::kSpace) return RunEnd(text, pos + 1, next.cls);
  }
  if (c.cls != CharClass::kSpace) return RunEnd(text, pos, c.cls);
  // '\s+(?!\S)' takes the whole whitespace run when it ends the text, else
  // backtracks one character so that the last space can lead the next word;
  // a single space before a non-space falls through to '\s+' and stands alone.
  size_t last_start = pos, end = pos;
  int count = 0;
  while (end < text.size()) {
    const Char w = CharAt(text, end);
    if (w.cls != CharClass::kSpace) break;
    last_start = end;
    end += w.length;
    ++count;
  }
  if (end == text.size() || count == 1) return end;
  return last_start;
}

}  // namespace

void SplitGpt2Pieces(std::string_view text, std::vector<std::string_view>* pieces) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = PieceEnd(text, pos);
    pieces->push_back(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace baton
