// Strict UTF-8 decoding, one code point at a time. Text files are not always
// valid UTF-8; a byte that does not start a valid sequence decodes as itself
// (valid = false, length 1) so that callers can keep the original bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace baton {

struct Utf8CodePoint {
  char32_t code_point;  // the byte's value when !valid
  int length;           // bytes consumed, 1..4
  bool valid;
};

// Decodes the code point starting at text[pos]; pos < text.size().
Utf8CodePoint DecodeUtf8At(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of a valid code point.
void AppendUtf8(char32_t code_point, std::string* out);

}  // namespace baton
