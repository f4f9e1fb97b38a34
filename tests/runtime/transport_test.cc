// Multi-rank tests of the MPI Transport; run under mpirun with 2 and 4 ranks
// (tests/runtime/mpi_test_main.cc). Every test runs on every rank. Each
// rank's data is a pure function of (seed, rank), so any rank can recompute
// what every other rank holds and check results locally, bitwise.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <cstring>

#include "runtime/mpi_transport.h"
#include "runtime/mpi_world.h"
#include "runtime/rng.h"
#include "tests/runtime/transport_test_data.h"

namespace baton {
namespace {

// Checks that `t` holds bitwise the same contents on every rank of `tr`.
void ExpectSameOnAllRanks(Transport& tr, const Tensor& t) {
  Tensor all;
  ASSERT_TRUE(tr.AllGather(t.Reshape({1, t.numel()}), &all).ok());
  for (int r = 0; r < tr.size(); ++r) EXPECT_TRUE(SameBits(all.Rows(r, r + 1).Reshape(t.shape()), t)) << "rank " << r;
}

class TransportTest : public testing::Test {
 protected:
  void SetUp() override { tr_ = NewMpiWorldTransport(); }
  int rank() const { return tr_->rank(); }
  int size() const { return tr_->size(); }
  int next() const { return (rank() + 1) % size(); }
  int prev() const { return (rank() + size() - 1) % size(); }
  std::unique_ptr<Transport> tr_;
};

TEST_F(TransportTest, DescribesWorld) {
  EXPECT_EQ(rank(), MpiWorld::Init(nullptr, nullptr).rank());
  EXPECT_EQ(size(), MpiWorld::Init(nullptr, nullptr).size());
  std::string want = "mpi group of " + std::to_string(size()) + " (world ranks ";
  for (int r = 0; r < size(); ++r) want += std::to_string(r) + (r + 1 < size() ? "," : ")");
  EXPECT_EQ(tr_->Describe(), want);
  EXPECT_GE(tr_->max_tag(), 32767);
}

// Every rank sends to next and receives from prev, listing the send first;
// 1 MiB per message is far above the eager limit, so blocking sends would
// deadlock. Several dtypes in one batch.
TEST_F(TransportTest, RingExchangeSendListedFirst) {
  const uint64_t base = 100;
  std::vector<DType> dtypes = {DType::kF32, DType::kF64, DType::kI32, DType::kBF16};
  std::vector<Shape> shapes = {{512, 512}, {37, 5}, {3, 7, 2}, {129}};
  std::vector<P2POp> ops;
  std::vector<Tensor> got;
  for (size_t k = 0; k < dtypes.size(); ++k) {
    Tensor out = RandomTensor(shapes[k], dtypes[k], base + 10 * k + static_cast<uint64_t>(rank()));
    got.push_back(Tensor::Empty(shapes[k], dtypes[k]));
    ops.push_back(P2POp::Send(next(), static_cast<int>(k), out));
    ops.push_back(P2POp::Recv(prev(), static_cast<int>(k), got.back()));
  }
  Status st = tr_->Exchange(ops);
  ASSERT_TRUE(st.ok()) << st.ToString();
  for (size_t k = 0; k < dtypes.size(); ++k) {
    EXPECT_TRUE(SameBits(got[k], RandomTensor(shapes[k], dtypes[k], base + 10 * k + static_cast<uint64_t>(prev()))))
        << DTypeName(dtypes[k]);
  }
}

// Both directions with both neighbours at once (the 1F1B steady state:
// activations forward, gradients backward), sends first.
TEST_F(TransportTest, BidirectionalNeighbours) {
  const Shape shape = {256, 256};
  Tensor act = RandomTensor(shape, DType::kF32, 200 + static_cast<uint64_t>(rank()));
  Tensor grad = RandomTensor(shape, DType::kF32, 300 + static_cast<uint64_t>(rank()));
  Tensor act_in = Tensor::Empty(shape, DType::kF32), grad_in = Tensor::Empty(shape, DType::kF32);
  Status st = tr_->Exchange({P2POp::Send(next(), 1, act), P2POp::Send(prev(), 2, grad),
                             P2POp::Recv(next(), 2, grad_in), P2POp::Recv(prev(), 1, act_in)});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(SameBits(act_in, RandomTensor(shape, DType::kF32, 200 + static_cast<uint64_t>(prev()))));
  EXPECT_TRUE(SameBits(grad_in, RandomTensor(shape, DType::kF32, 300 + static_cast<uint64_t>(next()))));
}

// Two batches in flight at once; the sender posts tag 1 then tag 2, the
// receiver posts tag 2 then tag 1 (same shapes: only the tags tell them
// apart); waited in reverse order.
TEST_F(TransportTest, PostWaitOverlapsBatchesAndTagsKeepMessagesApart) {
  const Shape shape = {64, 33};
  const uint64_t a_base = 400, b_base = 500;
  Tensor a = RandomTensor(shape, DType::kF32, a_base + static_cast<uint64_t>(rank()));
  Tensor b = RandomTensor(shape, DType::kF32, b_base + static_cast<uint64_t>(rank()));
  Tensor a_in = Tensor::Empty(shape, DType::kF32), b_in = Tensor::Empty(shape, DType::kF32);
  Result<int64_t> h1 = tr_->Post({P2POp::Send(next(), 1, a), P2POp::Recv(prev(), 2, b_in)});
  ASSERT_TRUE(h1.ok()) << h1.status().ToString();
  Result<int64_t> h2 = tr_->Post({P2POp::Send(next(), 2, b), P2POp::Recv(prev(), 1, a_in)});
  ASSERT_TRUE(h2.ok()) << h2.status().ToString();
  EXPECT_NE(*h1, *h2);
  a = b = Tensor();  // the transport keeps the send buffers alive until Wait
  Status st = tr_->Wait(*h2);
  ASSERT_TRUE(st.ok()) << st.ToString();
  st = tr_->Wait(*h1);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(SameBits(a_in, RandomTensor(shape, DType::kF32, a_base + static_cast<uint64_t>(prev()))));
  EXPECT_TRUE(SameBits(b_in, RandomTensor(shape, DType::kF32, b_base + static_cast<uint64_t>(prev()))));

  // A handle completes once.
  st = tr_->Wait(*h1);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("no such posted batch"), std::string::npos) << st.message();
}

// Test completes a batch without blocking once its peer has done its part.
TEST_F(TransportTest, TestCompletesASendOnceReceived) {
  const Shape shape = {32, 17};
  Tensor out = RandomTensor(shape, DType::kF32, 700 + static_cast<uint64_t>(rank()));
  Tensor in = Tensor::Empty(shape, DType::kF32);
  Result<int64_t> send = tr_->Post({P2POp::Send(next(), 9, out)});
  ASSERT_TRUE(send.ok()) << send.status().ToString();
  ASSERT_TRUE(tr_->Exchange({P2POp::Recv(prev(), 9, in)}).ok());
  ASSERT_TRUE(tr_->Barrier().ok());  // every receive has completed, so every send can
  bool done = false;
  for (int i = 0; i < 100000 && !done; ++i) {
    Result<bool> t = tr_->Test(*send);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    done = *t;
  }
  EXPECT_TRUE(done);
  EXPECT_TRUE(SameBits(in, RandomTensor(shape, DType::kF32, 700 + static_cast<uint64_t>(prev()))));
  Result<bool> again = tr_->Test(*send);  // the handle is spent
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("no such posted batch"), std::string::npos);
}

// Same pair, same tag: messages match in posting order.
TEST_F(TransportTest, SameTagMatchesInOrder) {
  std::vector<P2POp> ops;
  std::vector<Tensor> got;
  for (int k = 0; k < 3; ++k) {
    ops.push_back(P2POp::Send(next(), 7, RandomTensor({100}, DType::kF64, 600 + 10 * k + static_cast<uint64_t>(rank()))));
    got.push_back(Tensor::Empty({100}, DType::kF64));
    ops.push_back(P2POp::Recv(prev(), 7, got.back()));
  }
  ASSERT_TRUE(tr_->Exchange(ops).ok());
  for (int k = 0; k < 3; ++k) {
    EXPECT_TRUE(SameBits(got[k], RandomTensor({100}, DType::kF64, 600 + 10 * k + static_cast<uint64_t>(prev()))));
  }
}

template <typename T>
void CheckAllReduce(Transport& tr, const Shape& shape, uint64_t base) {
  const DType dtype = DTypeOf<T>();
  Tensor t = RandomTensor(shape, dtype, base + static_cast<uint64_t>(tr.rank()));
  Status st = tr.AllReduceSum(&t);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(SameBits(t, OrderedSum<T>(shape, dtype, Streams(base, tr.size()))))
      << DTypeName(dtype) << ShapeString(shape) << " differs from the rank-order sum";
  ExpectSameOnAllRanks(tr, t);
}

TEST_F(TransportTest, AllReduceSumIsTheRankOrderSumBitwise) {
  CheckAllReduce<float>(*tr_, {1001}, 700);      // blocks of unequal size
  CheckAllReduce<float>(*tr_, {3}, 710);         // fewer elements than ranks
  CheckAllReduce<float>(*tr_, {256, 129}, 720);
  CheckAllReduce<double>(*tr_, {64, 33}, 730);
  // Same inputs, same bits, call after call.
  Tensor a = RandomTensor({777}, DType::kF32, 740 + static_cast<uint64_t>(rank()));
  Tensor b = a.Clone();
  ASSERT_TRUE(tr_->AllReduceSum(&a).ok());
  ASSERT_TRUE(tr_->AllReduceSum(&b).ok());
  EXPECT_TRUE(SameBits(a, b));
}

TEST_F(TransportTest, AllReduceSumOfDoubles) {
  Tensor mine = RandomTensor({5}, DType::kF64, 800 + static_cast<uint64_t>(rank()));
  std::vector<double> v(mine.data<double>(), mine.data<double>() + 5);
  ASSERT_TRUE(tr_->AllReduceSum(&v).ok());
  Tensor want = OrderedSum<double>({5}, DType::kF64, Streams(800, size()));
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(std::memcmp(v.data(), want.raw(), 5 * sizeof(double)), 0);
  std::vector<double> empty;
  EXPECT_TRUE(tr_->AllReduceSum(&empty).ok());
}

TEST_F(TransportTest, AllGatherConcatenatesInRankOrder) {
  const uint64_t base = 900;
  Tensor all;
  ASSERT_TRUE(tr_->AllGather(RandomTensor({3, 4}, DType::kF32, base + static_cast<uint64_t>(rank())), &all).ok());
  ASSERT_EQ(all.shape(), (Shape{3 * size(), 4}));
  for (int r = 0; r < size(); ++r) {
    EXPECT_TRUE(SameBits(all.Rows(3 * r, 3 * r + 3), RandomTensor({3, 4}, DType::kF32, base + static_cast<uint64_t>(r))));
  }
  // In place: each rank's shard is already its rows of the full tensor (bf16 parameters).
  Tensor full = Tensor::Empty({2 * size(), 5}, DType::kBF16);
  Tensor shard = full.Rows(2 * rank(), 2 * rank() + 2);
  shard.CopyFrom(RandomTensor({2, 5}, DType::kBF16, base + 50 + static_cast<uint64_t>(rank())));
  ASSERT_TRUE(tr_->AllGather(shard, &full).ok());
  for (int r = 0; r < size(); ++r) {
    EXPECT_TRUE(SameBits(full.Rows(2 * r, 2 * r + 2), RandomTensor({2, 5}, DType::kBF16, base + 50 + static_cast<uint64_t>(r))));
  }
}

TEST_F(TransportTest, ReduceScatterSumGivesThisRanksBlock) {
  const uint64_t base = 1000;
  const Shape full = {5 * size(), 3};
  Tensor in = RandomTensor(full, DType::kF32, base + static_cast<uint64_t>(rank()));
  Tensor want = OrderedSum<float>(full, DType::kF32, Streams(base, size())).Rows(5 * rank(), 5 * rank() + 5);
  Tensor mine;
  Status st = tr_->ReduceScatterSum(in, &mine);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(SameBits(mine, want));
  // Output aliasing its own block of the input (in-place gradient sharding).
  Tensor own = in.Rows(5 * rank(), 5 * rank() + 5);
  ASSERT_TRUE(tr_->ReduceScatterSum(in, &own).ok());
  EXPECT_TRUE(SameBits(own, want));
}

TEST_F(TransportTest, BroadcastFromLastRank) {
  const int root = size() - 1;
  Tensor t = RandomTensor({17, 3}, DType::kF64, 1100 + static_cast<uint64_t>(rank()));
  Tensor ids = RandomTensor({9}, DType::kI32, 1200 + static_cast<uint64_t>(rank()));
  ASSERT_TRUE(tr_->Broadcast(&t, root).ok());
  ASSERT_TRUE(tr_->Broadcast(&ids, root).ok());
  EXPECT_TRUE(SameBits(t, RandomTensor({17, 3}, DType::kF64, 1100 + static_cast<uint64_t>(root))));
  EXPECT_TRUE(SameBits(ids, RandomTensor({9}, DType::kI32, 1200 + static_cast<uint64_t>(root))));
  EXPECT_TRUE(tr_->Barrier().ok());
}

// world = stages x replicas with replicas = 2, rank = stage * replicas + replica:
// pipeline groups (one per replica, ordered by stage) and data-parallel
// groups (one per stage, ordered by replica). With 4 ranks: 2 x 2.
TEST_F(TransportTest, SplitIntoStageAndReplicaGroups) {
  if (size() % 2 != 0) GTEST_SKIP() << "needs an even number of ranks";
  const int replicas = 2, stages = size() / 2;
  const int stage = rank() / replicas, replica = rank() % replicas;
  Result<std::unique_ptr<Transport>> pipe = tr_->Split(/*color=*/replica, /*key=*/stage);
  ASSERT_TRUE(pipe.ok()) << pipe.status().ToString();
  Result<std::unique_ptr<Transport>> data = tr_->Split(/*color=*/stage, /*key=*/replica);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  Transport& p = **pipe;
  Transport& d = **data;
  EXPECT_EQ(p.size(), stages);
  EXPECT_EQ(p.rank(), stage);
  EXPECT_EQ(d.size(), replicas);
  EXPECT_EQ(d.rank(), replica);
  std::string want = "mpi group of " + std::to_string(stages) + " (world ranks ";
  for (int s = 0; s < stages; ++s) want += std::to_string(s * replicas + replica) + (s + 1 < stages ? "," : ")");
  EXPECT_EQ(p.Describe(), want);

  // Gradient sum over the replicas of this stage: streams 1300 + world rank.
  const Shape shape = {31, 4};
  CheckAllReduce<float>(d, shape, 1300 + static_cast<uint64_t>(stage * replicas));
  // Scalar sum over the pipeline (loss lives on one stage, norms on all).
  std::vector<double> v = {static_cast<double>(rank()) + 0.25};
  ASSERT_TRUE(p.AllReduceSum(&v).ok());
  double want_sum = 0;
  for (int s = 0; s < stages; ++s) want_sum += s * replicas + replica + 0.25;
  EXPECT_EQ(v[0], want_sum);
  // Activations along the pipeline of this replica, group ranks as peers.
  if (stages > 1) {
    const int nxt = (stage + 1) % stages, prv = (stage + stages - 1) % stages;
    Tensor out = RandomTensor({8, 8}, DType::kF32, 1400 + static_cast<uint64_t>(rank()));
    Tensor in = Tensor::Empty({8, 8}, DType::kF32);
    Status st = p.Exchange({P2POp::Send(nxt, 3, out), P2POp::Recv(prv, 3, in)});
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_TRUE(SameBits(in, RandomTensor({8, 8}, DType::kF32, 1400 + static_cast<uint64_t>(prv * replicas + replica))));
  }
  // Broadcast from replica 0 inside each data group.
  Tensor w = RandomTensor({6}, DType::kF32, 1500 + static_cast<uint64_t>(rank()));
  ASSERT_TRUE(d.Broadcast(&w, 0).ok());
  EXPECT_TRUE(SameBits(w, RandomTensor({6}, DType::kF32, 1500 + static_cast<uint64_t>(stage * replicas))));
}

TEST_F(TransportTest, TagAboveTheBoundIsRejectedByName) {
  // Capped at the MPI standard's least MPI_TAG_UB, so the check is testable
  // where MPI_TAG_UB itself is INT_MAX (Open MPI).
  MpiTransportOptions options;
  options.max_tag = 32767;
  std::unique_ptr<Transport> capped = NewMpiWorldTransport(options);
  EXPECT_EQ(capped->max_tag(), 32767);
  Tensor t = RandomTensor({4}, DType::kF32, 1600);
  Status st = capped->Exchange({P2POp::Send(next(), 32768, t)});
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("tag 32768"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("32767"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("MPI_TAG_UB"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("world rank " + std::to_string(rank())), std::string::npos) << st.message();

  // Uncapped: above MPI_TAG_UB when an int can say so, and negative tags.
  std::vector<int> bad = {-1};
  if (tr_->max_tag() < INT_MAX) bad.push_back(tr_->max_tag() + 1);
  for (int tag : bad) {
    st = tr_->Exchange({P2POp::Recv(prev(), tag, t)});
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(st.message().find("tag " + std::to_string(tag)), std::string::npos) << st.message();
  }
  // Subgroups inherit the cap.
  Result<std::unique_ptr<Transport>> sub = capped->Split(0, rank());
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ((*sub)->max_tag(), 32767);
}

TEST_F(TransportTest, InvalidArgumentsAreReportedBeforeAnyCommunication) {
  Tensor t = RandomTensor({4, 2}, DType::kF32, 1700);
  Status st = tr_->Exchange({P2POp::Send(size(), 0, t)});
  EXPECT_NE(st.message().find("peer " + std::to_string(size())), std::string::npos) << st.message();
  st = tr_->Exchange({P2POp::Recv(prev(), 0, Tensor())});
  EXPECT_NE(st.message().find("undefined tensor"), std::string::npos) << st.message();
  Tensor ids = RandomTensor({4}, DType::kI32, 1701);
  st = tr_->AllReduceSum(&ids);
  EXPECT_NE(st.message().find("f32 or f64"), std::string::npos) << st.message();
  Tensor wrong = Tensor::Empty({1, 2}, DType::kF32);
  st = tr_->AllGather(t, &wrong);
  EXPECT_NE(st.message().find("expected f32[" + std::to_string(4 * size()) + ", 2]"), std::string::npos) << st.message();
  if (size() > 1) {
    Tensor odd = RandomTensor({4 * size() + 1}, DType::kF32, 1702), mine;
    st = tr_->ReduceScatterSum(odd, &mine);
    EXPECT_NE(st.message().find("equal row blocks"), std::string::npos) << st.message();
  }
  st = tr_->Broadcast(&t, -1);
  EXPECT_NE(st.message().find("root -1"), std::string::npos) << st.message();
  EXPECT_EQ(tr_->Split(-3, 0).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(tr_->Wait(12345).code(), Status::Code::kInvalidArgument);
}

// A receive whose sender sends fewer, then more, elements than the receiver's shape.
TEST_F(TransportTest, ShapeMismatchNamesThePeer) {
  if (size() < 2) GTEST_SKIP() << "needs 2 ranks";
  const bool sender = rank() % 2 == 0;
  const int peer = sender ? rank() + 1 : rank() - 1;
  if (peer >= size()) return;  // odd rank count: the last one sits out
  Status st;
  if (sender) {
    st = tr_->Exchange({P2POp::Send(peer, 9, RandomTensor({4}, DType::kF32, 1800))});
    EXPECT_TRUE(st.ok()) << st.ToString();
  } else {
    Tensor in = Tensor::Empty({8}, DType::kF32);
    st = tr_->Exchange({P2POp::Recv(peer, 9, in)});
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(st.message().find("from peer " + std::to_string(peer) + " (world rank " + std::to_string(peer) + "), tag 9"),
              std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("got 4 elements, expected 8"), std::string::npos) << st.message();
  }
  // More elements than the receiver expects: MPI's own error, returned, not fatal.
  if (sender) {
    st = tr_->Exchange({P2POp::Send(peer, 10, RandomTensor({8}, DType::kF32, 1801))});
    EXPECT_TRUE(st.ok()) << st.ToString();
  } else {
    Tensor in = Tensor::Empty({4}, DType::kF32);
    st = tr_->Exchange({P2POp::Recv(peer, 10, in)});
    EXPECT_EQ(st.code(), Status::Code::kIOError);
    EXPECT_NE(st.message().find("MPI_Waitall, receive of f32[4] on cpu from peer " + std::to_string(peer)),
              std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("MPI_ERR_TRUNCATE"), std::string::npos) << st.message();
  }
  EXPECT_TRUE(tr_->Barrier().ok());
}

}  // namespace
}  // namespace baton
