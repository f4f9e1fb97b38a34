#include "data/unicode_categories.h"

#include <algorithm>

namespace baton {
namespace {

bool InRanges(const CodePointRange* ranges, size_t count, char32_t cp) {
  const CodePointRange* end = ranges + count;
  // First range whose last code point is >= cp.
  const CodePointRange* it =
      std::lower_bound(ranges, end, cp, [](const CodePointRange& r, char32_t c) { return r.last < c; });
  return it != end && it->first <= cp;
}

}  // namespace

bool IsUnicodeLetter(char32_t cp) {
  // ASCII fast path: most text is mostly ASCII.
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return InRanges(kLetterRanges, kLetterRangesCount, cp);
}

bool IsUnicodeNumber(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return InRanges(kNumberRanges, kNumberRangesCount, cp);
}

bool IsJsWhitespace(char32_t cp) {
  switch (cp) {
    case '\t': case '\n': case 0x0B: case 0x0C: case '\r': case ' ':
    case 0x00A0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace baton
