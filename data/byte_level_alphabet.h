// GPT-2's byte-to-character table (`bytes_to_unicode`): every byte gets a
// printable character so that vocab files can be written as text. Printable
// Latin-1 bytes map to themselves; the other 68 map to U+0100..U+0143 in
// byte order.
#pragma once

#include <cstdint>

namespace baton {

char32_t ByteToBpeChar(uint8_t byte);
// The byte a character stands for, or -1 when it is not in the table.
int BpeCharToByte(char32_t ch);

}  // namespace baton
