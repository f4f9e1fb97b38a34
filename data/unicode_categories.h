// The three character classes the GPT-2 pre-tokenizer regex distinguishes:
// \p{L} (letters), \p{N} (numbers) and \s (whitespace), with the meanings
// they have in the reference encoder's JavaScript regex (flag `u`).
#pragma once

#include <cstddef>
#include <cstdint>

namespace baton {

struct CodePointRange {
  char32_t first, last;  // inclusive
};

// Generated tables (data/unicode_ranges.cc, by data/gen_unicode_ranges.py),
// sorted and disjoint.
extern const CodePointRange kLetterRanges[];
extern const size_t kLetterRangesCount;
extern const CodePointRange kNumberRanges[];
extern const size_t kNumberRangesCount;

bool IsUnicodeLetter(char32_t cp);
bool IsUnicodeNumber(char32_t cp);
// JavaScript's \s: ECMAScript WhiteSpace and LineTerminator. Unlike Python's
// \s it does not include U+0085 or U+001C..U+001F.
bool IsJsWhitespace(char32_t cp);

}  // namespace baton
