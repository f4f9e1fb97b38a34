// The collective writer under mpirun: every rank's shard lands in one
// committed checkpoint whose index covers all of them; when one rank cannot
// write, every rank gets the error, nothing is committed, the .tmp directory
// is gone and LATEST still names the previous checkpoint.
#include <gtest/gtest.h>

#include <filesystem>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_writer.h"
#include "runtime/mpi_transport.h"
#include "runtime/rng.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

class CheckpointWriterMpi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { world_ = NewMpiWorldTransport().release(); }
  static void TearDownTestSuite() { delete world_; }
  void SetUp() override {
    // One directory for the job: rank 0's pid, broadcast.
    Tensor id = Tensor::FromVector<double>({1}, {static_cast<double>(getpid())});
    ASSERT_TRUE(world_->Broadcast(&id, 0).ok());
    dir_ = (fs::temp_directory_path() / ("baton_ckpt_mpi_" + std::to_string(static_cast<long>(id.data<double>()[0])) +
                                          "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name())).string();
    if (world_->rank() == 0) ASSERT_TRUE(PrepareCheckpointDir(dir_).ok());
    ASSERT_TRUE(world_->Barrier().ok());
  }
  void TearDown() override {
    ASSERT_TRUE(world_->Barrier().ok());
    if (world_->rank() == 0) fs::remove_all(dir_);
  }
  // Rank r owns tensor "t<r>" of r + 1 rows.
  CheckpointWrite Write(int64_t step) {
    const int r = world_->rank();
    CheckpointWrite w;
    w.ckpt_dir = dir_;
    w.step = step;
    w.shard_file = "shard-" + std::to_string(r) + ".bin";
    RandomStream rng(step, static_cast<uint64_t>(r));
    Tensor t = Tensor::Empty({r + 1, 2}, DType::kF32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(rng.Normal());
    w.records.push_back(TensorRecord{"t" + std::to_string(r), t.shape(), 0, r + 1, t});
    for (int q = 0; q < world_->size(); ++q) w.manifest.mutable_topology()->add_shard_files("shard-" + std::to_string(q) + ".bin");
    return w;
  }
  static Transport* world_;
  std::string dir_;
};
Transport* CheckpointWriterMpi::world_ = nullptr;

TEST_F(CheckpointWriterMpi, EveryRanksShardIsCommittedAndIndexed) {
  CheckpointWrite w = Write(2);
  auto s = WriteCheckpoint(w, world_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->total_bytes, 4 * 2 * world_->size() * (world_->size() + 1) / 2);
  auto r = CheckpointReader::Open(dir_ + "/step_00000002");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->manifest().tensors_size(), world_->size());
  auto mine = r->Read("t" + std::to_string(world_->rank()));
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(std::memcmp(mine->raw(), w.records[0].data.raw(), w.records[0].data.nbytes()), 0);
}

TEST_F(CheckpointWriterMpi, OneFailingRankFailsTheCheckpointOnEveryRank) {
  ASSERT_TRUE(WriteCheckpoint(Write(1), world_).ok());
  CheckpointWrite w = Write(2);
  const int bad = world_->size() - 1;
  if (world_->rank() == bad) w.shard_file = "no/such/dir/shard.bin";  // this rank's write fails
  auto s = WriteCheckpoint(w, world_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("checkpoint of step 2 not written"), std::string::npos) << s.status().ToString();
  if (world_->rank() != bad)
    EXPECT_NE(s.status().message().find("rank " + std::to_string(bad) + " failed"), std::string::npos) << s.status().ToString();
  ASSERT_TRUE(world_->Barrier().ok());
  EXPECT_FALSE(fs::exists(dir_ + "/step_00000002.tmp"));
  EXPECT_FALSE(fs::exists(dir_ + "/step_00000002"));
  EXPECT_EQ(**ReadLatest(dir_), 1);
}

}  // namespace
}  // namespace baton
