// Multi-rank tests of the NCCL Transport, one GPU per rank, under mpirun with
// 2 and 4 ranks (label gpu; skipped without enough GPUs). Data is generated
// on the host (tests/runtime/transport_test_data.h), moved to the GPU,
// communicated, and checked bitwise on the host against what each rank can
// recompute: the sums against the same rank-order sum the MPI transport
// promises, so the two transports agree bit for bit.
#include <gtest/gtest.h>

#include "runtime/cuda_device.h"
#include "runtime/mpi_transport.h"
#include "runtime/mpi_world.h"
#include "runtime/nccl_transport.h"
#include "tests/runtime/transport_test_data.h"

namespace baton {
namespace {

class NcclTransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const MpiWorld& world = MpiWorld::Init(nullptr, nullptr);  // already initialised by the test main
    if (CudaDeviceCount() < world.local_size()) return;  // ranks of a node see the same count: all skip together
    const int local = world.local_rank();
    UseCudaDevice(local);
    kGpu = Device::CUDA(local);
    nccl_ = NewNcclWorldTransport().value().release();
    mpi_ = NewMpiWorldTransport().release();
  }
  void SetUp() override {
    if (!nccl_) GTEST_SKIP() << "needs one GPU per rank: " << CudaDeviceCount() << " GPU(s) here";
  }
  static Tensor OnGpu(const Tensor& host) { return host.To(kGpu); }
  static Tensor Back(const Tensor& gpu) {
    cuda::Synchronize();
    return gpu.To(Device::CPU());
  }
  int rank() const { return nccl_->rank(); }
  int size() const { return nccl_->size(); }

  static Device kGpu;  // this rank's GPU
  static Transport* nccl_;
  static Transport* mpi_;
};
Device NcclTransportTest::kGpu;
Transport* NcclTransportTest::nccl_ = nullptr;
Transport* NcclTransportTest::mpi_ = nullptr;

TEST_F(NcclTransportTest, DescribesItselfAndMatchesInOrder) {
  EXPECT_EQ(nccl_->Describe().rfind("nccl group of " + std::to_string(size()), 0), 0u) << nccl_->Describe();
  EXPECT_FALSE(nccl_->matches_by_tag());
  EXPECT_TRUE(mpi_->matches_by_tag());
}

TEST_F(NcclTransportTest, NeighboursExchangeBothWaysInOneBatch) {
  // Every rank sends to both neighbours and receives from both, in one batch (sends listed first).
  const int next = (rank() + 1) % size(), prev = (rank() + size() - 1) % size();
  const Shape shape{33, 17};
  auto stream = [](int from, int to) { return static_cast<uint64_t>(100 + from * 10 + to); };
  Tensor to_next = OnGpu(RandomTensor(shape, DType::kBF16, stream(rank(), next)));
  Tensor to_prev = OnGpu(RandomTensor(shape, DType::kF32, stream(rank(), prev)));
  Tensor from_prev = Tensor::Empty(shape, DType::kBF16, kGpu), from_next = Tensor::Empty(shape, DType::kF32, kGpu);
  ASSERT_TRUE(nccl_->Exchange({P2POp::Send(next, 0, to_next), P2POp::Send(prev, 1, to_prev),
                               P2POp::Recv(prev, 0, from_prev), P2POp::Recv(next, 1, from_next)})
                  .ok());
  EXPECT_TRUE(SameBits(Back(from_prev), RandomTensor(shape, DType::kBF16, stream(prev, rank()))));
  EXPECT_TRUE(SameBits(Back(from_next), RandomTensor(shape, DType::kF32, stream(next, rank()))));
}

TEST_F(NcclTransportTest, PostedBatchesCompleteInPostingOrderAndTestSeesIt) {
  // Three messages to the next rank in three batches: they arrive in posting order.
  const int next = (rank() + 1) % size(), prev = (rank() + size() - 1) % size();
  std::vector<int64_t> handles;
  std::vector<Tensor> in;
  for (int k = 0; k < 3; ++k) {
    const Shape shape{1000 + 7 * k};
    in.push_back(Tensor::Empty(shape, DType::kF32, kGpu));
    handles.push_back(nccl_->Post({P2POp::Send(next, 0, OnGpu(RandomTensor(shape, DType::kF32, 300 + rank() * 3 + k))),
                                   P2POp::Recv(prev, 0, in.back())})
                          .value());
  }
  for (int k = 2; k >= 0; --k) ASSERT_TRUE(nccl_->Wait(handles[k]).ok());  // any order
  for (int k = 0; k < 3; ++k)
    EXPECT_TRUE(SameBits(Back(in[k]), RandomTensor({1000 + 7 * k}, DType::kF32, 300 + prev * 3 + k))) << k;
  // Test: a completed batch is reported done (polling until it is), then its handle is spent.
  Tensor got = Tensor::Empty({64}, DType::kF32, kGpu);
  const int64_t h = nccl_->Post({P2POp::Send(next, 0, OnGpu(RandomTensor({64}, DType::kF32, 400))),
                                 P2POp::Recv(prev, 0, got)}).value();
  bool done = false;
  while (!done) done = nccl_->Test(h).value();
  EXPECT_FALSE(nccl_->Wait(h).ok());
}

TEST_F(NcclTransportTest, AllReduceSumIsTheMpiRankOrderSumBitwise) {
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (int64_t n : {int64_t{1}, int64_t{1001}, int64_t{4096}}) {  // fewer elements than ranks, uneven, even
      SCOPED_TRACE(std::string(DTypeName(dtype)) + " x " + std::to_string(n));
      const Tensor host = RandomTensor({n}, dtype, 500 + rank());
      Tensor gpu = OnGpu(host);
      ASSERT_TRUE(nccl_->AllReduceSum(&gpu).ok());
      Tensor want = RandomTensor({n}, dtype, 500 + rank());
      ASSERT_TRUE(mpi_->AllReduceSum(&want).ok());
      EXPECT_TRUE(SameBits(Back(gpu), want));
    }
  }
}

TEST_F(NcclTransportTest, ReduceScatterSumInPlaceGivesThisRanksBlock) {
  const Shape shape{static_cast<int64_t>(size()) * 5, 31};
  const Tensor host = RandomTensor(shape, DType::kF32, 600 + rank());
  Tensor gpu = OnGpu(host);
  Tensor mine = gpu.Rows(rank() * 5, rank() * 5 + 5);  // the output is this rank's own block of the input
  ASSERT_TRUE(nccl_->ReduceScatterSum(gpu, &mine).ok());
  Tensor want = OrderedSum<float>(shape, DType::kF32, Streams(600, size())).Rows(rank() * 5, rank() * 5 + 5);
  EXPECT_TRUE(SameBits(Back(mine), want));
}

TEST_F(NcclTransportTest, AllGatherInPlaceAndOutOfPlace) {
  const Shape block{3, 9};
  Tensor all;  // out of place, allocated by the transport
  ASSERT_TRUE(nccl_->AllGather(OnGpu(RandomTensor(block, DType::kBF16, 700 + rank())), &all).ok());
  Tensor in_place = Tensor::Empty({3 * size(), 9}, DType::kBF16, kGpu);
  Tensor own = in_place.Rows(3 * rank(), 3 * rank() + 3);
  own.CopyFrom(OnGpu(RandomTensor(block, DType::kBF16, 700 + rank())));
  ASSERT_TRUE(nccl_->AllGather(own, &in_place).ok());
  const Tensor a = Back(all), b = Back(in_place);
  for (int r = 0; r < size(); ++r) {
    EXPECT_TRUE(SameBits(a.Rows(3 * r, 3 * r + 3), RandomTensor(block, DType::kBF16, 700 + r))) << r;
    EXPECT_TRUE(SameBits(b.Rows(3 * r, 3 * r + 3), RandomTensor(block, DType::kBF16, 700 + r))) << r;
  }
}

TEST_F(NcclTransportTest, BroadcastFromTheLastRank) {
  Tensor t = OnGpu(RandomTensor({257}, DType::kF32, 800 + rank()));
  ASSERT_TRUE(nccl_->Broadcast(&t, size() - 1).ok());
  EXPECT_TRUE(SameBits(Back(t), RandomTensor({257}, DType::kF32, 800 + size() - 1)));
}

TEST_F(NcclTransportTest, SplitGroupsSumLikeTheirMpiTwins) {
  // Stage-like groups (rank % 2) and their sums, against MPI groups split the same way.
  std::unique_ptr<Transport> sub = nccl_->Split(rank() % 2, rank()).value();
  std::unique_ptr<Transport> twin = mpi_->Split(rank() % 2, rank()).value();
  ASSERT_EQ(sub->rank(), twin->rank());
  ASSERT_EQ(sub->size(), twin->size());
  Tensor gpu = OnGpu(RandomTensor({777}, DType::kF32, 900 + rank()));
  Tensor want = RandomTensor({777}, DType::kF32, 900 + rank());
  ASSERT_TRUE(sub->AllReduceSum(&gpu).ok());
  ASSERT_TRUE(twin->AllReduceSum(&want).ok());
  EXPECT_TRUE(SameBits(Back(gpu), want));
  EXPECT_NE(sub->Describe().find("world ranks"), std::string::npos) << sub->Describe();
}

TEST_F(NcclTransportTest, HostTensorsAndScalarsGoOverMpi) {
  std::vector<double> values{1.0 + rank(), 0.5};
  ASSERT_TRUE(nccl_->AllReduceSum(&values).ok());
  EXPECT_EQ(values[0], size() * (size() + 1) / 2.0);
  Tensor all;
  ASSERT_TRUE(nccl_->AllGather(RandomTensor({2}, DType::kF64, 950 + rank()), &all).ok());
  EXPECT_TRUE(all.device().is_cpu());
  EXPECT_TRUE(SameBits(all.Rows(2 * (size() - 1), 2 * size()), RandomTensor({2}, DType::kF64, 950 + size() - 1)));
}

TEST_F(NcclTransportTest, BadBatchesAreRefusedBeforeAnyCommunication) {
  const int next = (rank() + 1) % size();
  Status mixed = nccl_->Post({P2POp::Send(next, 0, Tensor::Zeros({4}, DType::kF32)),
                              P2POp::Send(next, 0, Tensor::Zeros({4}, DType::kF32, kGpu))}).status();
  EXPECT_FALSE(mixed.ok());
  EXPECT_NE(mixed.message().find("world rank " + std::to_string(rank())), std::string::npos) << mixed.ToString();
  EXPECT_NE(mixed.message().find("host and GPU tensors in one batch"), std::string::npos) << mixed.ToString();
  Status peer = nccl_->Post({P2POp::Send(size(), 0, Tensor::Zeros({4}, DType::kF32, kGpu))}).status();
  EXPECT_NE(peer.message().find("peer out of range"), std::string::npos) << peer.ToString();
  Tensor bf16 = Tensor::Zeros({4}, DType::kBF16, kGpu);
  EXPECT_NE(nccl_->AllReduceSum(&bf16).message().find("sums take f32 or f64"), std::string::npos);
}

}  // namespace
}  // namespace baton
