#include "data/unicode_categories.h"

#include <gtest/gtest.h>

#include "data/utf8.h"

namespace baton {
namespace {

// Expectations from the Unicode Character Database (General_Category) and
// ECMAScript's definition of \s.
TEST(UnicodeCategories, Letters) {
  for (char32_t cp : {U'a', U'Z', U'é', U'ß', U'Ж', U'λ', U'א', U'ا', U'あ', U'カ', U'中', U'한', U'ก', U'ʰ',
                      char32_t{0x1D49C} /* 𝒜 */, char32_t{0x20000} /* CJK ext B */}) {
    EXPECT_TRUE(IsUnicodeLetter(cp)) << std::hex << cp;
    EXPECT_FALSE(IsUnicodeNumber(cp)) << std::hex << cp;
  }
  for (char32_t cp : {U'0', U' ', U'_', U'\'', char32_t{0x301} /* combining acute, Mn */,
                      char32_t{0x0E31} /* Thai vowel sign, Mn */, char32_t{0x1F600} /* emoji */, char32_t{0x10FFFF}}) {
    EXPECT_FALSE(IsUnicodeLetter(cp)) << std::hex << cp;
  }
}

TEST(UnicodeCategories, Numbers) {
  for (char32_t cp : {U'0', U'9', U'٣', U'०', U'１', U'²', U'½', U'Ⅻ', U'〇', char32_t{0x1D7D9} /* 𝟙 */}) {
    EXPECT_TRUE(IsUnicodeNumber(cp)) << std::hex << cp;
    EXPECT_FALSE(IsUnicodeLetter(cp)) << std::hex << cp;
  }
  EXPECT_FALSE(IsUnicodeNumber(U'a'));
  EXPECT_FALSE(IsUnicodeNumber(U'.'));
}

TEST(UnicodeCategories, JavaScriptWhitespace) {
  for (char32_t cp : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F,
                      0x205F, 0x3000, 0xFEFF}) {
    EXPECT_TRUE(IsJsWhitespace(cp)) << std::hex << cp;
  }
  // Python's \s has these; JavaScript's does not.
  for (char32_t cp : {0x85, 0x1C, 0x1F, 0x180E, 0x200B}) EXPECT_FALSE(IsJsWhitespace(cp)) << std::hex << cp;
}

TEST(Utf8, DecodesValidAndKeepsInvalidBytes) {
  const std::string text = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";
  Utf8CodePoint a = DecodeUtf8At(text, 0), e = DecodeUtf8At(text, 1), zh = DecodeUtf8At(text, 3),
                smile = DecodeUtf8At(text, 6);
  EXPECT_EQ(a.code_point, U'a');
  EXPECT_EQ(e.code_point, U'é');
  EXPECT_EQ(e.length, 2);
  EXPECT_EQ(zh.code_point, U'中');
  EXPECT_EQ(smile.code_point, char32_t{0x1F600});
  EXPECT_EQ(smile.length, 4);
  for (const std::string& bad : {std::string("\xC0\xAF"), std::string("\xED\xA0\x80"), std::string("\xF4\x90\x80\x80"),
                                 std::string("\xE4\xB8"), std::string("\x80"), std::string("\xFF")}) {
    Utf8CodePoint u = DecodeUtf8At(bad, 0);
    EXPECT_FALSE(u.valid);
    EXPECT_EQ(u.length, 1);
    EXPECT_EQ(u.code_point, static_cast<unsigned char>(bad[0]));
  }
  std::string out;
  for (char32_t cp : {U'a', U'é', U'中', char32_t{0x1F600}}) AppendUtf8(cp, &out);
  EXPECT_EQ(out, text);
}

}  // namespace
}  // namespace baton
