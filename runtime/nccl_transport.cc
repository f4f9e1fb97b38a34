#include "runtime/nccl_transport.h"

#include <mpi.h>
#include <nccl.h>

#include <unistd.h>

#include <climits>
#include <cstring>
#include <functional>
#include <map>

#include "runtime/comm_watchdog.h"
#include "runtime/cuda/ordered_sum.h"
#include "runtime/cuda_device.h"
#include "runtime/log.h"
#include "runtime/mpi_transport.h"
#include "runtime/watched_transport.h"

namespace baton {
namespace {

std::string Bytes(size_t n) {
  char buf[32];
  if (n >= (1u << 20)) std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(n) / (1 << 20));
  else std::snprintf(buf, sizeof(buf), "%zu bytes", n);
  return buf;
}

class NcclTransport final : public Transport {
 public:
  // Takes ownership of `comm`; `host` is an MPI transport of the same group, same rank order.
  NcclTransport(ncclComm_t comm, std::unique_ptr<Transport> host);
  ~NcclTransport() override;

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  int max_tag() const override { return INT_MAX; }
  bool matches_by_tag() const override { return false; }

  Status Exchange(const std::vector<P2POp>& ops) override {
    BATON_ASSIGN_OR_RETURN(int64_t handle, Post(ops));
    return Wait(handle);
  }
  Result<int64_t> Post(const std::vector<P2POp>& ops) override;
  Status Wait(int64_t handle) override;
  Result<bool> Test(int64_t handle) override;
  Status AllReduceSum(Tensor* t) override;
  Status AllReduceSum(std::vector<double>* values) override { return host_->AllReduceSum(values); }
  Status AllGather(const Tensor& mine, Tensor* all) override;
  Status ReduceScatterSum(const Tensor& in, Tensor* mine) override;
  Status Broadcast(Tensor* t, int root) override;
  Status Barrier() override { return host_->Barrier(); }
  Result<std::unique_ptr<Transport>> Split(int color, int key) override;
  std::string Describe() const override { return "nccl " + host_->Describe().substr(4); }  // "mpi group ..." -> "nccl group ..."

 private:
  struct Batch {
    std::shared_ptr<CudaEvent> done;  // null: a host batch, handled by host_
    int64_t host_handle = 0;
    std::vector<Tensor> keep;  // buffers in use until done
  };

  Status Failure(ncclResult_t rc, const std::string& what) const {
    return Status::IOError("world rank " + std::to_string(world_rank_) + ": " + what + " in " + Describe() + ": " +
                           ncclGetErrorString(rc) + " (" + ncclGetLastError(comm_) + ")");
  }
  Status Invalid(const std::string& what) const {
    return Status::InvalidArgument("world rank " + std::to_string(world_rank_) + ": " + what + " in " + Describe());
  }
  // The watchdog's name for an operation: who waits, for what, where.
  std::string Name(const std::string& op) const {
    return "world rank " + std::to_string(world_rank_) + ": NCCL " + op + " in " + Describe();
  }
  Status CheckDeviceTensor(const Tensor& t, const std::string& what) const;
  Status CheckSummable(const Tensor& t, const std::string& what) const;
  // Runs `enqueue` (NCCL calls and kernels on stream_) after the compute stream's work so far;
  // returns the done event, watched under `what`.
  Result<std::shared_ptr<CudaEvent>> Enqueue(const std::string& what, const std::function<Status()>& enqueue);
  // Enqueue, then the compute stream waits for it: a collective's whole life.
  Status Collective(const std::string& what, const std::function<Status()>& enqueue);
  // Grouped send/recv of raw bytes on stream_ (call inside Enqueue).
  Status GroupedExchange(const std::vector<std::pair<const void*, int>>& sends, const std::vector<std::pair<void*, int>>& recvs,
                         size_t bytes, const std::string& what);

  ncclComm_t comm_;
  std::unique_ptr<Transport> host_;
  cudaStream_t stream_ = nullptr;
  int world_rank_ = -1;
  int watchdog_id_ = 0;
  int64_t next_handle_ = 1;
  std::map<int64_t, Batch> pending_;
};

NcclTransport::NcclTransport(ncclComm_t comm, std::unique_ptr<Transport> host) : comm_(comm), host_(std::move(host)) {
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_);
  // Above the compute stream's priority: a message ready to go is not held up behind kernels.
  int least = 0, greatest = 0;
  BATON_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  BATON_CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, greatest));
  watchdog_id_ = CommWatchdog::Instance().AddCommunicator(comm_, Describe());
}

NcclTransport::~NcclTransport() {
  // Normally nothing is in flight (the trainer synchronizes every step). After an error a
  // peer may never match what is: wait a little, then abort the communicator instead of
  // hanging the rank that is about to report the error. Unwaited host batches are kept
  // alive by the MPI transport.
  bool idle = false;
  for (int i = 0; i < 100 && !(idle = cudaStreamQuery(stream_) == cudaSuccess); ++i) usleep(100 * 1000);
  if (CommWatchdog::Instance().RemoveCommunicator(watchdog_id_)) {  // false: the watchdog aborted it
    const ncclResult_t rc = idle ? ncclCommDestroy(comm_) : ncclCommAbort(comm_);
    if (rc != ncclSuccess) LogWarning("destroying %s: %s", Describe().c_str(), ncclGetErrorString(rc));
  }
  if (idle) cudaStreamDestroy(stream_);  // else leaked: work that never completes may still use it
}

Status NcclTransport::CheckDeviceTensor(const Tensor& t, const std::string& what) const {
  if (!t.defined()) return Invalid(what + ": undefined tensor");
  if (t.device().is_cpu()) return Invalid(what + ": expected a tensor on the GPU, got " + t.Describe());
  if (t.device().index != cuda::CurrentDevice())
    return Invalid(what + ": " + t.Describe() + " is not on this rank's GPU " + std::to_string(cuda::CurrentDevice()));
  return Status::OK();
}

Status NcclTransport::CheckSummable(const Tensor& t, const std::string& what) const {
  BATON_RETURN_IF_ERROR(CheckDeviceTensor(t, what));
  if (t.dtype() != DType::kF32 && t.dtype() != DType::kF64)
    return Invalid(what + ": sums take f32 or f64 tensors, got " + t.Describe());
  return Status::OK();
}

Result<std::shared_ptr<CudaEvent>> NcclTransport::Enqueue(const std::string& what,
                                                          const std::function<Status()>& enqueue) {
  CudaEvent ready;
  BATON_CUDA_CHECK(cudaEventRecord(ready.get(), cuda::ComputeStream()));
  BATON_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready.get(), 0));
  {
    HostWatch watch(Name(what) + " (posting)");  // NCCL may block here, connecting to a peer
    BATON_RETURN_IF_ERROR(enqueue());
  }
  auto done = std::make_shared<CudaEvent>();
  BATON_CUDA_CHECK(cudaEventRecord(done->get(), stream_));
  CommWatchdog::Instance().Watch(done, Name(what));
  return done;
}

Status NcclTransport::Collective(const std::string& what, const std::function<Status()>& enqueue) {
  BATON_ASSIGN_OR_RETURN(std::shared_ptr<CudaEvent> done, Enqueue(what, enqueue));
  BATON_CUDA_CHECK(cudaStreamWaitEvent(cuda::ComputeStream(), done->get(), 0));
  return Status::OK();  // buffers freed from here on are reused on the compute stream, after `done`
}

Status NcclTransport::GroupedExchange(const std::vector<std::pair<const void*, int>>& sends,
                                      const std::vector<std::pair<void*, int>>& recvs, size_t bytes,
                                      const std::string& what) {
  ncclResult_t rc = ncclGroupStart();
  if (rc != ncclSuccess) return Failure(rc, "ncclGroupStart (" + what + ")");
  for (const auto& [ptr, peer] : sends)
    if ((rc = ncclSend(ptr, bytes, ncclUint8, peer, comm_, stream_)) != ncclSuccess) break;
  if (rc == ncclSuccess)
    for (const auto& [ptr, peer] : recvs)
      if ((rc = ncclRecv(ptr, bytes, ncclUint8, peer, comm_, stream_)) != ncclSuccess) break;
  const ncclResult_t end = ncclGroupEnd();
  if (rc != ncclSuccess) return Failure(rc, "ncclSend/ncclRecv (" + what + ")");
  if (end != ncclSuccess) return Failure(end, "ncclGroupEnd (" + what + ")");
  return Status::OK();
}

Result<int64_t> NcclTransport::Post(const std::vector<P2POp>& ops) {
  size_t on_host = 0;
  for (const P2POp& op : ops) on_host += op.tensor.defined() && op.tensor.device().is_cpu();
  const int64_t handle = next_handle_++;
  if (!ops.empty() && on_host == ops.size()) {  // small host messages: MPI
    BATON_ASSIGN_OR_RETURN(int64_t h, host_->Post(ops));
    pending_[handle] = Batch{nullptr, h, {}};
    return handle;
  }
  std::string what = "batch [";
  for (const P2POp& op : ops) {
    const bool send = op.kind == P2POp::kSend;
    const std::string name = std::string(send ? "send to" : "receive from") + " peer " + std::to_string(op.peer);
    if (op.kind != P2POp::kSend && op.kind != P2POp::kRecv) return Invalid("P2POp kind is neither kSend nor kRecv");
    if (op.peer < 0 || op.peer >= size()) return Invalid(name + ": peer out of range [0, " + std::to_string(size()) + ")");
    if (op.tag < 0) return Invalid(name + ": negative tag " + std::to_string(op.tag));
    BATON_RETURN_IF_ERROR(CheckDeviceTensor(op.tensor, name + (on_host ? " (host and GPU tensors in one batch)" : "")));
    what += (what.size() > 7 ? ", " : "") + name + " (" + Bytes(op.tensor.nbytes()) + ")";
  }
  what += "]";
  Batch batch;
  BATON_ASSIGN_OR_RETURN(batch.done, Enqueue(what, [&]() -> Status {
    ncclResult_t rc = ncclGroupStart();
    if (rc != ncclSuccess) return Failure(rc, "ncclGroupStart");
    for (const P2POp& op : ops) {
      rc = op.kind == P2POp::kSend ? ncclSend(op.tensor.raw(), op.tensor.nbytes(), ncclUint8, op.peer, comm_, stream_)
                                   : ncclRecv(op.tensor.raw(), op.tensor.nbytes(), ncclUint8, op.peer, comm_, stream_);
      if (rc != ncclSuccess) break;
    }
    const ncclResult_t end = ncclGroupEnd();
    if (rc != ncclSuccess) return Failure(rc, what);
    if (end != ncclSuccess) return Failure(end, "ncclGroupEnd of " + what);
    return Status::OK();
  }));
  for (const P2POp& op : ops) batch.keep.push_back(op.tensor);
  pending_[handle] = std::move(batch);
  return handle;
}

Status NcclTransport::Wait(int64_t handle) {
  auto it = pending_.find(handle);
  if (it == pending_.end())
    return Invalid("Wait(" + std::to_string(handle) + "): no such posted batch (already waited, or not from Post here)");
  Batch batch = std::move(it->second);
  pending_.erase(it);
  if (!batch.done) return host_->Wait(batch.host_handle);
  BATON_CUDA_CHECK(cudaStreamWaitEvent(cuda::ComputeStream(), batch.done->get(), 0));
  return Status::OK();
}

Result<bool> NcclTransport::Test(int64_t handle) {
  auto it = pending_.find(handle);
  if (it == pending_.end())
    return Invalid("Test(" + std::to_string(handle) + "): no such posted batch (already completed, or not from Post here)");
  bool done = false;
  if (!it->second.done) {
    BATON_ASSIGN_OR_RETURN(done, host_->Test(it->second.host_handle));
  } else {
    const cudaError_t state = cudaEventQuery(it->second.done->get());
    if (state != cudaSuccess && state != cudaErrorNotReady) BATON_CUDA_CHECK(state);
    done = state == cudaSuccess;
  }
  if (done) pending_.erase(it);
  return done;
}

Status NcclTransport::AllReduceSum(Tensor* t) {
  if (t->defined() && t->device().is_cpu()) return host_->AllReduceSum(t);
  BATON_RETURN_IF_ERROR(CheckSummable(*t, "AllReduceSum"));
  const int p = size(), r = rank();
  const int64_t n = t->numel(), block = (n + p - 1) / p;
  if (p == 1 || n == 0) return Status::OK();
  const size_t elem = SizeOf(t->dtype());
  auto begin = [&](int q) { return std::min(n, q * block); };
  auto length = [&](int q) { return std::min(n, (q + 1) * block) - begin(q); };
  char* base = static_cast<char*>(t->raw());
  Tensor scratch = Tensor::Empty({p * block}, t->dtype(), t->device());
  char* slots = static_cast<char*>(scratch.raw());
  return Collective("AllReduceSum of " + t->Describe(), [&]() -> Status {
    // 1. Block q of every rank goes to rank q, into the slot of its sender (the last
    //    blocks may be shorter: each message has the receiving rank's block length).
    ncclResult_t rc = ncclGroupStart();
    for (int q = 0; q < p && rc == ncclSuccess; ++q) {
      if (q == r) continue;
      if (length(q) > 0) rc = ncclSend(base + begin(q) * elem, length(q) * elem, ncclUint8, q, comm_, stream_);
      if (rc == ncclSuccess && length(r) > 0)
        rc = ncclRecv(slots + q * block * elem, length(r) * elem, ncclUint8, q, comm_, stream_);
    }
    const ncclResult_t end = ncclGroupEnd();
    if (rc != ncclSuccess || end != ncclSuccess) return Failure(rc != ncclSuccess ? rc : end, "AllReduceSum (scatter)");
    BATON_CUDA_CHECK(cudaMemcpyAsync(slots + r * block * elem, base + begin(r) * elem, length(r) * elem,
                                     cudaMemcpyDeviceToDevice, stream_));
    // 2. Rank r adds its block's p copies in rank order.
    cuda::OrderedSum(t->dtype(), slots, p, block, length(r), base + begin(r) * elem, stream_);
    // 3. Every rank gets every sum.
    rc = ncclGroupStart();
    for (int q = 0; q < p && rc == ncclSuccess; ++q) {
      if (q == r) continue;
      if (length(r) > 0) rc = ncclSend(base + begin(r) * elem, length(r) * elem, ncclUint8, q, comm_, stream_);
      if (rc == ncclSuccess && length(q) > 0)
        rc = ncclRecv(base + begin(q) * elem, length(q) * elem, ncclUint8, q, comm_, stream_);
    }
    const ncclResult_t end2 = ncclGroupEnd();
    if (rc != ncclSuccess || end2 != ncclSuccess) return Failure(rc != ncclSuccess ? rc : end2, "AllReduceSum (gather)");
    return Status::OK();
  });
}

Status NcclTransport::ReduceScatterSum(const Tensor& in, Tensor* mine) {
  if (in.defined() && in.device().is_cpu()) return host_->ReduceScatterSum(in, mine);
  BATON_RETURN_IF_ERROR(CheckSummable(in, "ReduceScatterSum"));
  const int p = size(), r = rank();
  if (in.rank() < 1 || in.dim(0) % p != 0)
    return Invalid("ReduceScatterSum of " + in.Describe() + ": dim 0 must split into " + std::to_string(p) +
                   " equal blocks");
  Shape shape = in.shape();
  shape[0] /= p;
  if (!mine->defined()) *mine = Tensor::Empty(shape, in.dtype(), in.device());
  if (mine->shape() != shape || mine->dtype() != in.dtype() || mine->device() != in.device())
    return Invalid("ReduceScatterSum of " + in.Describe() + ": output is " + mine->Describe());
  const int64_t m = in.numel() / p;
  const size_t bytes = static_cast<size_t>(m) * SizeOf(in.dtype());
  Tensor scratch = Tensor::Empty({p * m}, in.dtype(), in.device());
  char* slots = static_cast<char*>(scratch.raw());
  const char* base = static_cast<const char*>(in.raw());
  void* out = mine->raw();
  return Collective("ReduceScatterSum of " + in.Describe(), [&]() -> Status {
    std::vector<std::pair<const void*, int>> sends;
    std::vector<std::pair<void*, int>> recvs;
    for (int q = 0; q < p; ++q) {
      if (q == r) continue;
      sends.push_back({base + q * bytes, q});
      recvs.push_back({slots + q * bytes, q});
    }
    BATON_RETURN_IF_ERROR(GroupedExchange(sends, recvs, bytes, "ReduceScatterSum"));
    BATON_CUDA_CHECK(cudaMemcpyAsync(slots + r * bytes, base + r * bytes, bytes, cudaMemcpyDeviceToDevice, stream_));
    cuda::OrderedSum(in.dtype(), slots, p, m, m, out, stream_);
    return Status::OK();
  });
}

Status NcclTransport::AllGather(const Tensor& mine, Tensor* all) {
  if (mine.defined() && mine.device().is_cpu()) return host_->AllGather(mine, all);
  BATON_RETURN_IF_ERROR(CheckDeviceTensor(mine, "AllGather"));
  if (mine.rank() < 1) return Invalid("AllGather: needs a tensor with a first dimension, got " + mine.Describe());
  Shape shape = mine.shape();
  shape[0] *= size();
  if (!all->defined()) *all = Tensor::Empty(shape, mine.dtype(), mine.device());
  if (all->shape() != shape || all->dtype() != mine.dtype() || all->device() != mine.device())
    return Invalid("AllGather of " + mine.Describe() + ": output is " + all->Describe());
  const size_t bytes = mine.nbytes();
  char* out = static_cast<char*>(all->raw());
  // In place when `mine` is this rank's block of `all`, as NCCL allows.
  const void* send = mine.raw() == out + rank() * bytes ? out + rank() * bytes : mine.raw();
  return Collective("AllGather of " + mine.Describe(), [&]() -> Status {
    const ncclResult_t rc = ncclAllGather(send, out, bytes, ncclUint8, comm_, stream_);
    return rc == ncclSuccess ? Status::OK() : Failure(rc, "ncclAllGather");
  });
}

Status NcclTransport::Broadcast(Tensor* t, int root) {
  if (t->defined() && t->device().is_cpu()) return host_->Broadcast(t, root);
  BATON_RETURN_IF_ERROR(CheckDeviceTensor(*t, "Broadcast"));
  if (root < 0 || root >= size())
    return Invalid("Broadcast of " + t->Describe() + ": root " + std::to_string(root) + " out of range");
  if (size() == 1) return Status::OK();
  return Collective("Broadcast of " + t->Describe() + " from rank " + std::to_string(root), [&]() -> Status {
    const ncclResult_t rc = ncclBroadcast(t->raw(), t->raw(), t->nbytes(), ncclUint8, root, comm_, stream_);
    return rc == ncclSuccess ? Status::OK() : Failure(rc, "ncclBroadcast");
  });
}

Result<std::unique_ptr<Transport>> NcclTransport::Split(int color, int key) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Transport> host, host_->Split(color, key));
  // Nothing in flight may cross the split: finish this group's work first.
  BATON_CUDA_CHECK(cudaStreamSynchronize(stream_));
  ncclComm_t sub = nullptr;
  ncclResult_t rc;
  {
    HostWatch watch(Name("ncclCommSplit"));
    rc = ncclCommSplit(comm_, color, key, &sub, nullptr);
  }
  if (rc != ncclSuccess) return Failure(rc, "ncclCommSplit(color " + std::to_string(color) + ")");
  int nccl_rank = -1;
  if ((rc = ncclCommUserRank(sub, &nccl_rank)) != ncclSuccess) {
    ncclCommDestroy(sub);
    return Failure(rc, "ncclCommUserRank");
  }
  if (nccl_rank != host->rank()) {
    ncclCommDestroy(sub);
    return Status::Internal("ncclCommSplit and MPI_Comm_split ordered the group differently (" +
                            std::to_string(nccl_rank) + " vs " + std::to_string(host->rank()) + ")");
  }
  return std::unique_ptr<Transport>(new NcclTransport(sub, std::move(host)));
}

}  // namespace

Result<std::unique_ptr<Transport>> NewNcclWorldTransport() {
  std::unique_ptr<Transport> host = NewWatchedTransport(NewMpiWorldTransport());
  ncclUniqueId id;
  if (host->rank() == 0) {
    const ncclResult_t rc = ncclGetUniqueId(&id);
    if (rc != ncclSuccess) return Status::IOError(std::string("ncclGetUniqueId: ") + ncclGetErrorString(rc));
  }
  static_assert(sizeof(id.internal) % 2 == 0, "the id travels as 16-bit words");
  Tensor bytes = Tensor::Empty({static_cast<int64_t>(sizeof(id.internal) / 2)}, DType::kU16);
  std::memcpy(bytes.raw(), id.internal, sizeof(id.internal));
  BATON_RETURN_IF_ERROR(host->Broadcast(&bytes, 0));
  std::memcpy(id.internal, bytes.raw(), sizeof(id.internal));
  ncclComm_t comm = nullptr;
  ncclResult_t rc;
  {
    HostWatch watch("world rank " + std::to_string(host->rank()) + ": ncclCommInitRank over " +
                    std::to_string(host->size()) + " ranks");
    rc = ncclCommInitRank(&comm, host->size(), id, host->rank());
  }
  if (rc != ncclSuccess)
    return Status::IOError("world rank " + std::to_string(host->rank()) + ": ncclCommInitRank over " +
                           std::to_string(host->size()) + " ranks: " + ncclGetErrorString(rc) + " (" +
                           ncclGetLastError(nullptr) + ")");
  return std::unique_ptr<Transport>(new NcclTransport(comm, std::move(host)));
}

}  // namespace baton
