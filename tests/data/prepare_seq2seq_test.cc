// `baton prepare --seq2seq`: the line format, the token layout of an
// example, shards cut only between examples, the per-example split, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <tuple>

#include "data/bpe_tokenizer.h"
#include "data/prepare.h"
#include "data/seq2seq_text.h"
#include "data/token_shard.h"
#include "tests/data/test_files.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

constexpr int kEot = 50256;
constexpr int kSep = 50258;

TEST(Seq2SeqText, ParsesLinesSkipsBlanksAndCountsLineNumbers) {
  const std::string text =
      "\xEF\xBB\xBF"  // byte order mark: not part of the first source
      "one\tun\r\n"
      "\n"
      "  \t \r\n"  // only whitespace (a TAB included): skipped
      " two \t deux \n"
      "\tonly a target\n"
      "only a source\t";  // no final newline
  Result<Seq2SeqText> parsed = ParseSeq2SeqText(text, "in/pairs.tsv");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->examples.size(), 4u);
  EXPECT_EQ(parsed->skipped_blank_lines, 2);
  const std::vector<std::tuple<int64_t, std::string, std::string>> expected = {
      {1, "one", "un"}, {4, " two ", " deux "}, {5, "", "only a target"}, {6, "only a source", ""}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(parsed->examples[i].line, std::get<0>(expected[i])) << i;
    EXPECT_EQ(parsed->examples[i].source, std::get<1>(expected[i])) << i;
    EXPECT_EQ(parsed->examples[i].target, std::get<2>(expected[i])) << i;
  }
  EXPECT_EQ(Seq2SeqExampleName("sub/pairs.tsv", 12), "sub/pairs.tsv:12");
}

TEST(Seq2SeqText, LinesWithoutExactlyOneTabAreErrorsNamingFileAndLine) {
  Result<Seq2SeqText> none = ParseSeq2SeqText("a\tb\n\nno tab here\n", "in/pairs.tsv");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("in/pairs.tsv:3: "), std::string::npos) << none.status().message();
  EXPECT_NE(none.status().message().find("no TAB"), std::string::npos) << none.status().message();

  Result<Seq2SeqText> two = ParseSeq2SeqText("a\tb\tc\n", "in/pairs.tsv");
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("in/pairs.tsv:1: "), std::string::npos) << two.status().message();
  EXPECT_NE(two.status().message().find("2 TABs"), std::string::npos) << two.status().message();
  EXPECT_NE(two.status().message().find("\"a\\tb\\tc\""), std::string::npos) << two.status().message();
}

// Every file under `dir` (recursively, hidden ones included) and its bytes.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  if (!fs::exists(dir)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    files[fs::relative(entry.path(), dir).string()] = entry.is_regular_file() ? ReadFileBytes(entry.path()) : "<dir>";
  }
  return files;
}

class PrepareSeq2SeqTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BATON_SKIP_WITHOUT_GPT2_VOCAB();
    Result<BpeTokenizer> tokenizer = BpeTokenizer::Load(Gpt2EncoderJson(), Gpt2VocabBpe());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
    tokenizer_ = std::make_unique<BpeTokenizer>(std::move(tokenizer).value());
  }
  PrepareOptions Options(const std::string& out, std::vector<std::string> inputs) const {
    PrepareOptions o;
    o.encoder_json = Gpt2EncoderJson();
    o.vocab_bpe = Gpt2VocabBpe();
    o.out_dir = out;
    o.val_fraction = 0;
    o.shard_tokens = 1000000;
    o.name = "s2s";
    o.inputs = std::move(inputs);
    o.seq2seq = true;
    return o;
  }
  // The tokens of each shard, in order.
  static std::vector<std::vector<uint16_t>> Shards(const PrepareSplitReport& split) {
    std::vector<std::vector<uint16_t>> shards;
    for (const std::string& path : split.shards) {
      Result<std::vector<uint16_t>> tokens = ReadTokenShard(path, 65536);
      EXPECT_TRUE(tokens.ok()) << tokens.status().ToString();
      shards.push_back(tokens.ok() ? *tokens : std::vector<uint16_t>{});
    }
    return shards;
  }
  // A token stream cut at each <|endoftext|>, each piece starting with it.
  static std::vector<std::vector<uint16_t>> Examples(const std::vector<uint16_t>& tokens) {
    std::vector<std::vector<uint16_t>> examples;
    for (uint16_t t : tokens) {
      if (t == kEot || examples.empty()) examples.emplace_back();
      examples.back().push_back(t);
    }
    return examples;
  }
  // "source\ttarget" of one example as written (<eot> source <sep> target).
  std::string Decode(const std::vector<uint16_t>& example) const {
    const auto sep = std::find(example.begin(), example.end(), kSep);
    EXPECT_NE(sep, example.end());
    return tokenizer_->Decode(std::vector<int>(example.begin() + 1, sep)) + "\t" +
           tokenizer_->Decode(std::vector<int>(sep + (sep == example.end() ? 0 : 1), example.end()));
  }
  // The decoded examples of a split, sorted.
  std::vector<std::string> SortedExamples(const PrepareSplitReport& split) const {
    std::vector<std::string> all;
    for (const auto& shard : Shards(split)) {
      for (const auto& example : Examples(shard)) all.push_back(Decode(example));
    }
    std::sort(all.begin(), all.end());
    return all;
  }

  std::unique_ptr<BpeTokenizer> tokenizer_;
  ScratchDir input_;
  ScratchDir output_;
};

TEST_F(PrepareSeq2SeqTest, WritesEotSourceSepTargetPerExample) {
  WriteFileBytes(input_ / "pairs.tsv",
                 "\xEF\xBB\xBFHello world, how are you?\tBonjour le monde, comment allez-vous ?\r\n"
                 "\n"
                 "   \n"
                 "The cat sat on the mat.\tLe chat s'est assis sur le tapis.\n"
                 "\tA target without a source\n");
  Result<PrepareReport> report = PrepareTokenShards(Options(output_ / "out", {input_ / "pairs.tsv"}));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->train.examples, 3);
  EXPECT_EQ(report->train.documents, 0);
  EXPECT_EQ(report->val.examples, 0);
  EXPECT_EQ(report->skipped_blank_lines, 2);
  ASSERT_EQ(report->train.shards.size(), 1u);
  EXPECT_EQ(report->train.shards[0], output_ / "out/s2s_train_000000.bin");

  // Built independently of the prepare code: each part tokenized on its own.
  std::vector<uint16_t> expected;
  for (const auto& [source, target] : std::vector<std::pair<std::string, std::string>>{
           {"Hello world, how are you?", "Bonjour le monde, comment allez-vous ?"},
           {"The cat sat on the mat.", "Le chat s'est assis sur le tapis."},
           {"", "A target without a source"}}) {
    expected.push_back(kEot);
    for (int id : tokenizer_->Encode(source)) expected.push_back(static_cast<uint16_t>(id));
    expected.push_back(kSep);
    for (int id : tokenizer_->Encode(target)) expected.push_back(static_cast<uint16_t>(id));
  }
  EXPECT_EQ(Shards(report->train)[0], expected);
  EXPECT_EQ(report->train.tokens, static_cast<int64_t>(expected.size()));

  // Another separator id is written where the default was.
  PrepareOptions other = Options(output_ / "other", {input_ / "pairs.tsv"});
  other.sep_token = 50257;  // the first id past GPT-2's vocabulary
  Result<PrepareReport> with_other = PrepareTokenShards(other);
  ASSERT_TRUE(with_other.ok()) << with_other.status().ToString();
  std::replace(expected.begin(), expected.end(), static_cast<uint16_t>(kSep), static_cast<uint16_t>(50257));
  EXPECT_EQ(Shards(with_other->train)[0], expected);
}

TEST_F(PrepareSeq2SeqTest, ShardsAreCutOnlyBetweenExamples) {
  std::string text;
  std::vector<std::string> lines;
  for (int i = 0; i < 60; ++i) {
    std::string source = "question " + std::to_string(i);
    for (int k = 0; k < i % 7; ++k) source += " and more";
    std::string target = "answer " + std::to_string(i * 7);
    if (i == 20) {  // far longer than a shard
      for (int k = 0; k < 30; ++k) target += " words words";
    }
    lines.push_back(source + "\t" + target);
    text += lines.back() + "\n";
  }
  WriteFileBytes(input_ / "qa.tsv", text);
  PrepareOptions o = Options(output_ / "out", {input_ / "qa.tsv"});
  o.shard_tokens = 24;
  o.val_fraction = 0.2;
  Result<PrepareReport> report = PrepareTokenShards(o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->train.examples + report->val.examples, 60);
  EXPECT_EQ(report->val.examples, 12);

  int64_t oversized = 0, packed = 0;
  for (const PrepareSplitReport* split : {&report->train, &report->val}) {
    const std::vector<std::vector<uint16_t>> shards = Shards(*split);
    ASSERT_GT(shards.size(), 2u);
    for (size_t s = 0; s < shards.size(); ++s) {
      ASSERT_FALSE(shards[s].empty());
      EXPECT_EQ(shards[s][0], kEot) << split->shards[s] << " starts inside an example";
      const auto examples = Examples(shards[s]);
      for (const auto& example : examples) {
        EXPECT_EQ(std::count(example.begin(), example.end(), kSep), 1) << split->shards[s];
      }
      if (shards[s].size() > 24u) {
        ++oversized;
        EXPECT_EQ(examples.size(), 1u) << "only a single example may make a shard exceed shard_tokens";
      }
      if (examples.size() > 1) ++packed;
      // A shard is cut only when the next example does not fit any more.
      if (s + 1 < shards.size()) {
        EXPECT_GT(shards[s].size() + Examples(shards[s + 1])[0].size(), 24u) << split->shards[s] << " cut early";
      }
    }
  }
  EXPECT_EQ(oversized, 1);  // example 20
  EXPECT_GT(packed, 0);     // shards do hold several examples
  // Every line comes back exactly once, as its text.
  std::vector<std::string> all = SortedExamples(report->train);
  const std::vector<std::string> val = SortedExamples(report->val);
  all.insert(all.end(), val.begin(), val.end());
  std::sort(all.begin(), all.end());
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(all, lines);
}

TEST_F(PrepareSeq2SeqTest, SplitIsPerExampleAndIndependentOfInputOrder) {
  for (const std::string name : {"a.tsv", "b.tsv"}) {
    std::string text;
    for (int i = 0; i < 40; ++i) text += name + " source " + std::to_string(i) + "\ttarget " + std::to_string(i) + "\n";
    WriteFileBytes(input_ / name, text);
  }
  PrepareOptions ab = Options(output_ / "ab", {input_ / "a.tsv", input_ / "b.tsv"});
  ab.val_fraction = 0.25;
  ab.shard_tokens = 100;
  Result<PrepareReport> first = PrepareTokenShards(ab);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->val.examples, 20);  // round(80 * 0.25), over examples, not files
  const std::vector<std::string> val = SortedExamples(first->val);
  ASSERT_EQ(val.size(), 20u);
  // Examples of both files are in validation: the split is not per file.
  EXPECT_TRUE(std::any_of(val.begin(), val.end(), [](const std::string& e) { return e.rfind("a.tsv", 0) == 0; }));
  EXPECT_TRUE(std::any_of(val.begin(), val.end(), [](const std::string& e) { return e.rfind("b.tsv", 0) == 0; }));

  // Inputs given in the other order: the same bytes.
  PrepareOptions ba = ab;
  ba.out_dir = output_ / "ba";
  ba.inputs = {input_ / "b.tsv", input_ / "a.tsv"};
  ASSERT_TRUE(PrepareTokenShards(ba).ok());
  EXPECT_TRUE(Snapshot(output_ / "ab") == Snapshot(output_ / "ba"));

  // The same files where they are read in the other order (b before a): the
  // same examples in validation, since the split goes by name and line.
  fs::create_directories(input_ / "0");
  fs::create_directories(input_ / "1");
  fs::copy_file(input_ / "b.tsv", input_ / "0/b.tsv");
  fs::copy_file(input_ / "a.tsv", input_ / "1/a.tsv");
  PrepareOptions moved = ab;
  moved.out_dir = output_ / "moved";
  moved.inputs = {input_ / "1/a.tsv", input_ / "0/b.tsv"};
  Result<PrepareReport> second = PrepareTokenShards(moved);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(SortedExamples(second->val), val);
  EXPECT_EQ(SortedExamples(second->train), SortedExamples(first->train));
  EXPECT_FALSE(Snapshot(output_ / "moved") == Snapshot(output_ / "ab")) << "the write order should differ";
}

TEST_F(PrepareSeq2SeqTest, ValidationExamplesAreNotRunsOfConsecutiveLines) {
  std::string text;
  for (int i = 1; i <= 400; ++i) text += "source " + std::to_string(i) + "\ttarget\n";
  WriteFileBytes(input_ / "lines.tsv", text);
  PrepareOptions o = Options(output_ / "out", {input_ / "lines.tsv"});
  o.val_fraction = 0.1;
  Result<PrepareReport> report = PrepareTokenShards(o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::vector<int> val_lines;
  for (const std::string& e : SortedExamples(report->val)) val_lines.push_back(std::stoi(e.substr(7)));
  ASSERT_EQ(val_lines.size(), 40u);
  std::sort(val_lines.begin(), val_lines.end());
  int adjacent = 0;
  for (size_t i = 1; i < val_lines.size(); ++i) adjacent += val_lines[i] == val_lines[i - 1] + 1;
  // About 40 * 0.1 = 4 for a random choice; an unmixed name hash gives ~36.
  EXPECT_LT(adjacent, 12) << "validation lines cluster";
}

TEST_F(PrepareSeq2SeqTest, ErrorsNameFileAndLineAndLeaveOutputUntouched) {
  WriteFileBytes(input_ / "good.tsv", "one\tun\ntwo\tdeux\nthree\ttrois\n");
  PrepareOptions good = Options(output_ / "out", {input_ / "good.tsv"});
  good.val_fraction = 0.5;
  ASSERT_TRUE(PrepareTokenShards(good).ok());
  const std::map<std::string, std::string> before = Snapshot(output_ / "out");
  ASSERT_EQ(before.size(), 2u);

  // The bad file sorts after the good one, so it is read after it.
  const std::vector<std::tuple<std::string, std::string, std::string>> bad_lines = {
      {"one\tun\n\nno tab at all\n", "zz_bad.tsv:3: ", "no TAB"},
      {"one\tun\ntwo\tdeux\ttwice\n", "zz_bad.tsv:2: ", "2 TABs"},
  };
  for (const auto& [contents, where, what] : bad_lines) {
    WriteFileBytes(input_ / "zz_bad.tsv", contents);
    for (const std::string& out : {output_ / "out", output_ / "fresh"}) {
      PrepareOptions o = Options(out, {input_ / "good.tsv", input_ / "zz_bad.tsv"});
      Result<PrepareReport> r = PrepareTokenShards(o);
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.status().message().find(where), std::string::npos) << r.status().message();
      EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
    }
    EXPECT_TRUE(Snapshot(output_ / "out") == before) << where;
    EXPECT_FALSE(fs::exists(output_ / "fresh")) << "a failed run created the output directory";
  }

  const std::vector<std::pair<int, std::string>> bad_seps = {
      {100, "text can encode to"}, {50256, "<|endoftext|>"}, {65536, "uint16"}, {-1, "uint16"}};
  for (const auto& [sep, what] : bad_seps) {
    PrepareOptions o = Options(output_ / "out", {input_ / "good.tsv"});
    o.sep_token = sep;
    Result<PrepareReport> r = PrepareTokenShards(o);
    ASSERT_FALSE(r.ok()) << sep;
    EXPECT_NE(r.status().message().find("--sep-token " + std::to_string(sep) + ": "), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
    EXPECT_TRUE(Snapshot(output_ / "out") == before) << sep;
  }
  // The separator only matters in seq2seq mode.
  PrepareOptions documents = Options(output_ / "docs", {input_ / "good.tsv"});
  documents.seq2seq = false;
  documents.sep_token = 100;
  EXPECT_TRUE(PrepareTokenShards(documents).ok());
}

}  // namespace
}  // namespace baton
