#include "data/byte_level_alphabet.h"

#include <array>

namespace baton {
namespace {

bool MapsToItself(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

std::array<char32_t, 256> BuildTable() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) table[b] = MapsToItself(b) ? static_cast<char32_t>(b) : next++;
  return table;
}

const std::array<char32_t, 256>& Table() {
  static const std::array<char32_t, 256> table = BuildTable();
  return table;
}

}  // namespace

char32_t ByteToBpeChar(uint8_t byte) { return Table()[byte]; }

int BpeCharToByte(char32_t ch) {
  if (ch < 256) return MapsToItself(static_cast<int>(ch)) ? static_cast<int>(ch) : -1;
  // The unprintable bytes take U+0100.. in byte order.
  int index = static_cast<int>(ch) - 256;
  for (int b = 0; b < 256; ++b) {
    if (!MapsToItself(b) && index-- == 0) return b;
  }
  return -1;
}

}  // namespace baton
