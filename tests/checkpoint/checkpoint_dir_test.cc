// The directory protocol and the verifying reader, in one process: names,
// commit (also over a stale committed directory), LATEST, pruning that never
// deletes the protected or LATEST checkpoint, leftovers of crashed writers,
// and a logical tensor assembled from slices in several shard files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_writer.h"
#include "runtime/rng.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

class CheckpointDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("baton_ckpt_dir_" + std::to_string(getpid()) + "_" +
                                          ::testing::UnitTest::GetInstance()->current_test_info()->name())).string();
    fs::remove_all(dir_);
    ASSERT_TRUE(PrepareCheckpointDir(dir_).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  Tensor Random(const Shape& shape, uint64_t stream) {
    RandomStream rng(7, stream);
    Tensor t = Tensor::Empty(shape, DType::kF32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(rng.Normal());
    return t;
  }
  // A one-process checkpoint of one random tensor "w" at `step`.
  Tensor Save(int64_t step, int keep = 3, const std::string& protect = "") {
    CheckpointWrite w;
    w.ckpt_dir = dir_;
    w.step = step;
    w.shard_file = "shard-p00-d00.bin";
    Tensor t = Random({3, 4}, static_cast<uint64_t>(step));
    w.records.push_back(TensorRecord{"w", t.shape(), 0, 3, t});
    w.keep = keep;
    w.protect_dir = protect;
    auto s = WriteCheckpoint(w, nullptr);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return t;
  }
  std::vector<int64_t> Steps() { return *ListCommittedSteps(dir_); }

  std::string dir_;
};

TEST_F(CheckpointDir, NamesAndLatest) {
  EXPECT_EQ(StepDirName(1000), "step_00001000");
  EXPECT_EQ(StepOfDirName("step_00001000"), 1000);
  EXPECT_FALSE(StepOfDirName("step_00001000.tmp").has_value());
  EXPECT_FALSE(StepOfDirName("step_").has_value());
  EXPECT_FALSE(ReadLatest(dir_)->has_value());
  Tensor t = Save(5);
  EXPECT_EQ(**ReadLatest(dir_), 5);
  auto r = CheckpointReader::Open(dir_ + "/step_00000005");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->step(), 5);
  auto back = r->Read("w");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::memcmp(back->raw(), t.raw(), t.nbytes()), 0);
  EXPECT_EQ(r->Read("nope").status().code(), Status::Code::kNotFound);
  // The effective config next to the manifest, for people.
  EXPECT_TRUE(fs::exists(dir_ + "/step_00000005/config.pbtxt"));
}

TEST_F(CheckpointDir, KeepsTheNewestAndNeverTheProtectedOrLatest) {
  for (int64_t s : {1, 2, 3}) Save(s, 2);
  EXPECT_EQ(Steps(), (std::vector<int64_t>{2, 3}));
  Save(4, 2, dir_ + "/step_00000002");  // resumed from step 2: it stays
  EXPECT_EQ(Steps(), (std::vector<int64_t>{2, 3, 4}));
  Save(5, 2, dir_ + "/step_00000002/");
  EXPECT_EQ(Steps(), (std::vector<int64_t>{2, 4, 5}));
  // LATEST names an older step (the newer one was found damaged and fallen back from): kept too.
  std::ofstream(dir_ + "/LATEST") << "step_00000002\n";
  ASSERT_TRUE(PruneCheckpoints(dir_, 1, "").ok());
  EXPECT_EQ(Steps(), (std::vector<int64_t>{2, 5}));
}

TEST_F(CheckpointDir, CommitReplacesAStaleDirectoryAndLeftoversAreCleared) {
  Save(3);
  Tensor newer = Save(3);  // e.g. re-reached after falling back past a damaged step 3
  auto r = CheckpointReader::Open(dir_ + "/step_00000003");
  ASSERT_TRUE(r.ok());
  auto back = r->Read("w");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::memcmp(back->raw(), newer.raw(), newer.nbytes()), 0);
  // What crashed writers leave: never listed, removed by the next write.
  fs::create_directories(dir_ + "/step_00000009.tmp");
  fs::create_directories(dir_ + "/step_00000001.deleting");
  fs::create_directories(dir_ + "/step_00000002.replaced");
  EXPECT_EQ(Steps(), (std::vector<int64_t>{3}));
  Save(4);
  for (const char* gone : {"step_00000009.tmp", "step_00000001.deleting", "step_00000002.replaced"})
    EXPECT_FALSE(fs::exists(dir_ + "/" + gone)) << gone;
  AbandonStepDir(dir_, 4);  // only ever touches .tmp
  EXPECT_TRUE(fs::exists(dir_ + "/step_00000004"));
}

TEST_F(CheckpointDir, ATensorSplitOverShardsIsJoinedAndEachSliceVerified) {
  // Rows [0, 2) in one file and [2, 5) in another, as two ranks holding row shards would write.
  const std::string tmp = *BeginStepDir(dir_, 7);
  Tensor full = Random({5, 3}, 99);
  ASSERT_TRUE(WriteTensorRecords(tmp + "/a.bin", {TensorRecord{"x", {5, 3}, 0, 2, full.Rows(0, 2)}}).ok());
  ASSERT_TRUE(WriteTensorRecords(tmp + "/b.bin", {TensorRecord{"x", {5, 3}, 2, 5, full.Rows(2, 5)}}).ok());
  CheckpointManifest m;
  m.set_format_version(1);
  m.set_step(7);
  m.mutable_topology()->add_shard_files("a.bin");
  m.mutable_topology()->add_shard_files("b.bin");
  ASSERT_TRUE(AddShardToIndex(tmp, "a.bin", &m).ok());
  ASSERT_TRUE(AddShardToIndex(tmp, "b.bin", &m).ok());
  ASSERT_TRUE(WriteManifest(tmp, m).ok());
  ASSERT_TRUE(CommitStepDir(dir_, 7).ok());
  auto r = CheckpointReader::Open(dir_ + "/step_00000007");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto x = r->Read("x");
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_EQ(std::memcmp(x->raw(), full.raw(), full.nbytes()), 0);
  // A flipped byte in the second slice's payload is named by file and tensor.
  {
    std::fstream f(dir_ + "/step_00000007/b.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  }
  auto bad = CheckpointReader::Open(dir_ + "/step_00000007")->Read("x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_NE(bad.status().message().find("tensor x"), std::string::npos) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("b.bin"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace baton
