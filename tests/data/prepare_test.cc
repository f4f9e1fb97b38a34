#include "data/prepare.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>

#include "data/bpe_tokenizer.h"
#include "data/token_dataset.h"
#include "tests/data/test_files.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

const std::vector<std::pair<std::string, std::string>> kDocuments = {
    {"alpha.txt", "The quick brown fox jumps over the lazy dog.\n"},
    {"beta.txt", "It was the best of times, it was the worst of times.\n\nChapter 2\n"},
    {"gamma.txt", "Call me Ishmael. Some years ago - never mind how long precisely -\n"},
    {"sub/delta.txt", "In a hole in the ground there lived a hobbit.\n"},
    {"sub/epsilon.txt", "Happy families are all alike; every unhappy family is unhappy in its own way.\n"},
    {"sub/deeper/zeta.txt", "Mr. and Mrs. Dursley, of number four, Privet Drive, were proud to say that they were "
                            "perfectly normal, thank you very much.\n"},
    {"eta.txt", "Whan that Aprille with his shoures soote\n"},
    {"theta.txt", "A screaming comes across the sky. It has happened before, but there is nothing to compare it to now."},
};

class PrepareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BATON_SKIP_WITHOUT_GPT2_VOCAB();
    for (const auto& [name, text] : kDocuments) {
      fs::create_directories(fs::path(input_ / name).parent_path());
      WriteFileBytes(input_ / name, text);
    }
    WriteFileBytes(input_ / ".hidden", "not a document");
    WriteFileBytes(input_ / "empty.txt", "");
  }
  PrepareOptions Options(const std::string& out) const {
    PrepareOptions o;
    o.encoder_json = Gpt2EncoderJson();
    o.vocab_bpe = Gpt2VocabBpe();
    o.out_dir = out;
    o.val_fraction = 0.25;
    o.shard_tokens = 40;
    o.name = "tiny";
    o.inputs = {input_.str()};
    return o;
  }
  // All tokens of a split's shards, in order.
  static std::vector<uint16_t> SplitTokens(const std::string& glob) {
    Result<TokenDataset> data = TokenDataset::Open(glob, 50257);
    EXPECT_TRUE(data.ok()) << data.status().ToString();
    std::vector<uint16_t> all;
    if (!data.ok()) return all;
    for (size_t i = 0; i < data->num_shards(); ++i) {
      const TokenShard& s = data->shard(i);
      all.insert(all.end(), s.tokens(), s.tokens() + s.size());
    }
    return all;
  }
  // The documents of a token stream: the text after each 50256.
  std::vector<std::string> Documents(const std::vector<uint16_t>& tokens) const {
    Result<BpeTokenizer> tok = BpeTokenizer::Load(Gpt2EncoderJson(), Gpt2VocabBpe());
    EXPECT_TRUE(tok.ok());
    std::vector<std::string> docs;
    std::vector<int> current;
    EXPECT_FALSE(tokens.empty());
    if (tokens.empty()) return docs;
    EXPECT_EQ(tokens[0], 50256) << "a split must start with <|endoftext|>";
    for (size_t i = 1; i <= tokens.size(); ++i) {
      if (i == tokens.size() || tokens[i] == 50256) {
        docs.push_back(tok->Decode(current));
        current.clear();
      } else {
        current.push_back(tokens[i]);
      }
    }
    return docs;
  }

  ScratchDir input_;
  ScratchDir output_;
};

TEST_F(PrepareTest, WritesReadableShardsOfWholeDocuments) {
  Result<PrepareReport> report = PrepareTokenShards(Options(output_ / "out"));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->train.documents + report->val.documents, 8);
  EXPECT_EQ(report->val.documents, 2);  // round(8 * 0.25)
  EXPECT_EQ(report->skipped_empty_files, 1);
  EXPECT_GT(report->train.shards.size(), 1u);  // 40-token shards
  EXPECT_EQ(report->train.shards[0], output_ / "out/tiny_train_000000.bin");
  EXPECT_EQ(report->val.shards[0], output_ / "out/tiny_val_000000.bin");

  const std::vector<uint16_t> train = SplitTokens(output_ / "out/tiny_train_*.bin");
  const std::vector<uint16_t> val = SplitTokens(output_ / "out/tiny_val_*.bin");
  EXPECT_EQ(static_cast<int64_t>(train.size()), report->train.tokens);
  EXPECT_EQ(static_cast<int64_t>(val.size()), report->val.tokens);
  for (const std::string& shard : report->train.shards) {
    EXPECT_LE(fs::file_size(shard), 1024u + 2 * 40);
  }
  // Every document appears once, as its exact text, in one split.
  std::vector<std::string> decoded = Documents(train);
  const std::vector<std::string> val_docs = Documents(val);
  EXPECT_EQ(val_docs.size(), 2u);
  decoded.insert(decoded.end(), val_docs.begin(), val_docs.end());
  std::vector<std::string> expected;
  for (const auto& [name, text] : kDocuments) expected.push_back(text);
  std::sort(decoded.begin(), decoded.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(decoded, expected);
}

TEST_F(PrepareTest, SplitIsDeterministicAndIndependentOfInputOrder) {
  ASSERT_TRUE(PrepareTokenShards(Options(output_ / "a")).ok());
  PrepareOptions listed = Options(output_ / "b");
  // The same documents named file by file and directory by directory, in another order.
  listed.inputs = {input_ / "theta.txt", input_ / "sub", input_ / "eta.txt", input_ / "gamma.txt",
                   input_ / "beta.txt", input_ / "alpha.txt"};
  ASSERT_TRUE(PrepareTokenShards(listed).ok());
  // Names for the split are paths relative to the directory given ("delta.txt"
  // under sub/ instead of "sub/delta.txt"), so compare the document sets.
  auto sorted_docs = [&](const std::string& glob) {
    std::vector<std::string> d = Documents(SplitTokens(glob));
    std::sort(d.begin(), d.end());
    return d;
  };
  const auto val_a = sorted_docs(output_ / "a/tiny_val_*.bin");
  ASSERT_EQ(val_a.size(), 2u);
  // A second run with the same inputs gives identical bytes.
  ASSERT_TRUE(PrepareTokenShards(Options(output_ / "c")).ok());
  for (const auto& entry : fs::directory_iterator(output_ / "a")) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(ReadFileBytes(entry.path().string()) == ReadFileBytes(output_ / "c/" + name)) << name << " differs";
  }
  // Top-level files keep their names, so their assignment must agree between runs.
  for (const std::string& doc : sorted_docs(output_ / "b/tiny_val_*.bin")) {
    for (const auto& [name, text] : kDocuments) {
      if (text == doc && name.find('/') == std::string::npos) {
        EXPECT_TRUE(std::find(val_a.begin(), val_a.end(), doc) != val_a.end()) << name;
      }
    }
  }
}

TEST_F(PrepareTest, RemovesStaleShardsOfAnEarlierLargerRun) {
  PrepareOptions o = Options(output_ / "out");
  o.shard_tokens = 10;
  Result<PrepareReport> many = PrepareTokenShards(o);
  ASSERT_TRUE(many.ok());
  o.shard_tokens = 1000;
  Result<PrepareReport> one = PrepareTokenShards(o);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->train.shards.size(), 1u);
  EXPECT_EQ(one->removed_stale_shards.size(), many->train.shards.size() + many->val.shards.size() - 2);
  Result<TokenDataset> train = TokenDataset::Open(output_ / "out/tiny_train_*.bin", 50257);
  ASSERT_TRUE(train.ok());
  EXPECT_EQ(train->num_shards(), 1u);
}

// Every file under `dir` (recursively, hidden ones included) and its bytes.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    files[fs::relative(entry.path(), dir).string()] = entry.is_regular_file() ? ReadFileBytes(entry.path()) : "<dir>";
  }
  return files;
}

TEST_F(PrepareTest, FailedRunLeavesEarlierShardsUntouched) {
  // Enough documents that several chunks are read (a chunk is at most 64),
  // so the failing last document comes after new shards have been written.
  ScratchDir many;
  for (int i = 0; i < 100; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "doc%03d.txt", i);
    WriteFileBytes(many / name, "Document " + std::to_string(i) + ": " + kDocuments[i % kDocuments.size()].second);
  }
  PrepareOptions o = Options(output_ / "out");
  o.inputs = {many.str()};
  o.shard_tokens = 50;
  Result<PrepareReport> first = PrepareTokenShards(o);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_GT(first->train.shards.size(), 5u);
  const std::map<std::string, std::string> before = Snapshot(output_ / "out");

  // A second run with smaller shards (more of them, different bytes), whose
  // last document cannot be read.
  o.shard_tokens = 30;
  const std::string tmp_dir = output_ / "out/.prepare-tiny.tmp";
  std::atomic<bool> new_shards_written{false};
  o.read_document = [&](const std::string& path) -> Result<std::string> {
    if (fs::path(path).filename() == "doc099.txt") {
      new_shards_written = fs::exists(tmp_dir + "/tiny_train_000000.bin");
      return Status::IOError(path + ": injected read error");
    }
    return ReadFileBytes(path);
  };
  Result<PrepareReport> second = PrepareTokenShards(o);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("doc099.txt"), std::string::npos) << second.status().message();
  EXPECT_TRUE(new_shards_written) << "the failure should come after some new shards were written";
  EXPECT_FALSE(fs::exists(tmp_dir));
  EXPECT_TRUE(Snapshot(output_ / "out") == before) << "the failed run changed the earlier shards";

  // Once the input reads again, the next run replaces the lot.
  o.read_document = nullptr;
  Result<PrepareReport> third = PrepareTokenShards(o);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_GT(third->train.shards.size(), first->train.shards.size());
  EXPECT_FALSE(fs::exists(tmp_dir));
  for (const std::string& shard : third->train.shards) EXPECT_LE(fs::file_size(shard), 1024u + 2 * 30);
}

TEST_F(PrepareTest, LeftoverTemporaryDirectoryOfAnInterruptedRunIsReplaced) {
  const std::string tmp_dir = output_ / "out/.prepare-tiny.tmp";
  fs::create_directories(tmp_dir);
  WriteFileBytes(tmp_dir + "/tiny_train_000099.bin", "half a shard");
  Result<PrepareReport> report = PrepareTokenShards(Options(output_ / "out"));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(fs::exists(tmp_dir));
  EXPECT_FALSE(fs::exists(output_ / "out/tiny_train_000099.bin"));
  EXPECT_EQ(Snapshot(output_ / "out").size(), report->train.shards.size() + report->val.shards.size());
}

TEST_F(PrepareTest, ClearErrors) {
  PrepareOptions missing = Options(output_ / "out");
  missing.inputs.push_back(input_ / "no_such_file.txt");
  Result<PrepareReport> r = PrepareTokenShards(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no_such_file.txt"), std::string::npos) << r.status().message();

  PrepareOptions bad_vocab = Options(output_ / "out");
  bad_vocab.vocab_bpe = input_ / "alpha.txt";  // not a merges file
  r = PrepareTokenShards(bad_vocab);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("alpha.txt"), std::string::npos) << r.status().message();

  PrepareOptions bad_fraction = Options(output_ / "out");
  bad_fraction.val_fraction = 1.0;
  EXPECT_FALSE(PrepareTokenShards(bad_fraction).ok());
}

TEST(PrepareSplit, ChoosesRoundedFractionByNameHash) {
  std::vector<PrepareDocument> docs;
  for (int i = 0; i < 200; ++i) docs.push_back({"/x/" + std::to_string(i), "doc" + std::to_string(i) + ".txt"});
  const std::vector<bool> val = ChooseValidationDocuments(docs, 0.05);
  EXPECT_EQ(std::count(val.begin(), val.end(), true), 10);
  // Reversing the list moves no document between splits.
  std::vector<PrepareDocument> reversed(docs.rbegin(), docs.rend());
  const std::vector<bool> val_reversed = ChooseValidationDocuments(reversed, 0.05);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(val[i], val_reversed[199 - i]);
  const std::vector<bool> none = ChooseValidationDocuments(docs, 0.0);
  EXPECT_EQ(std::count(none.begin(), none.end(), true), 0);
  const std::vector<bool> two = ChooseValidationDocuments({docs[0], docs[1]}, 0.01);
  EXPECT_EQ(std::count(two.begin(), two.end(), true), 1);  // at least one, at most n - 1
}

}  // namespace
}  // namespace baton
