// MPI Transport. How the sums stay deterministic:
//
// MPI_Allreduce/MPI_Reduce_scatter promise nothing about the order in which
// contributions are added (Open MPI picks ring, recursive doubling, ... by
// message size and group size), so they are not used for floating point.
// Instead a sum is an ordered reduce-scatter followed by a gather:
//   1. MPI_Alltoall(v): rank j receives block j of every rank's tensor
//      (pure data movement);
//   2. rank j adds the size() copies of its block locally in rank order,
//      s = x0; s += x1; s += x2; ... (plain loop in the tensor's dtype, no
//      reassociation: the build does not use -ffast-math);
//   3. MPI_Allgatherv (AllReduceSum only) copies every reduced block to
//      every rank (pure data movement).
// Each element is therefore summed exactly once, by one rank, in rank order:
// the result is bitwise identical on all ranks, in every run, and equal to
// ((x0 + x1) + x2) + ... computed anywhere. It moves 2 (p-1)/p of the tensor
// per rank, like a ring all-reduce. Scalar vectors are all-gathered and summed
// locally in rank order.
#include "runtime/mpi_transport.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>

#include "runtime/log.h"
#include "runtime/mpi_world.h"

namespace baton {
namespace {

std::string MpiErrorString(int rc) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(rc);
  return std::string(msg, static_cast<size_t>(len));
}

MPI_Datatype MpiType(DType t) {
  switch (t) {
    case DType::kF32: return MPI_FLOAT;
    case DType::kF64: return MPI_DOUBLE;
    case DType::kI32: return MPI_INT32_T;
    case DType::kBF16:  // moved as raw 16-bit patterns; never reduced by MPI
    case DType::kU16: return MPI_UINT16_T;
  }
  return MPI_DATATYPE_NULL;
}

// out[k] = ((in[0][k] + in[1][k]) + in[2][k]) + ..., blocks of m elements.
template <typename T>
void OrderedSum(const T* in, int p, int64_t m, T* out) {
  std::memmove(out, in, static_cast<size_t>(m) * sizeof(T));
  for (int i = 1; i < p; ++i) {
    const T* x = in + static_cast<int64_t>(i) * m;
    for (int64_t k = 0; k < m; ++k) out[k] += x[k];
  }
}

void OrderedSum(DType t, const void* in, int p, int64_t m, void* out) {
  if (t == DType::kF32) {
    OrderedSum(static_cast<const float*>(in), p, m, static_cast<float*>(out));
  } else {
    BATON_CHECK(t == DType::kF64, "OrderedSum of " << DTypeName(t));
    OrderedSum(static_cast<const double*>(in), p, m, static_cast<double*>(out));
  }
}

// A batch of posted requests; ops keep the tensors' buffers alive.
struct Batch {
  std::vector<MPI_Request> requests;
  std::vector<P2POp> ops;
};

// Batches whose requests may still be running after an error or a destroyed
// transport: their buffers must outlive MPI, so they are kept to process exit.
void Abandon(Batch batch) {
  static auto* abandoned = new std::vector<Batch>();
  abandoned->push_back(std::move(batch));
}

int WorldRank() {
  int r = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

class MpiTransport final : public Transport {
 public:
  // Takes ownership of `comm` (freed on failure too).
  static Result<std::unique_ptr<Transport>> Create(MPI_Comm comm, int max_tag_cap);
  ~MpiTransport() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int max_tag() const override { return max_tag_; }

  Status Exchange(const std::vector<P2POp>& ops) override;
  Result<int64_t> Post(const std::vector<P2POp>& ops) override;
  Status Wait(int64_t handle) override;
  Result<bool> Test(int64_t handle) override;
  Status AllReduceSum(Tensor* t) override;
  Status AllReduceSum(std::vector<double>* values) override;
  Status AllGather(const Tensor& mine, Tensor* all) override;
  Status ReduceScatterSum(const Tensor& in, Tensor* mine) override;
  Status Broadcast(Tensor* t, int root) override;
  Status Barrier() override;
  Result<std::unique_ptr<Transport>> Split(int color, int key) override;
  std::string Describe() const override;

 private:
  MpiTransport(MPI_Comm comm, int max_tag_cap) : comm_(comm), max_tag_cap_(max_tag_cap) {}

  std::string Prefix() const { return "world rank " + std::to_string(world_rank_) + ": "; }
  // " in mpi group of 2 (...)" for sub-groups, "" for the world.
  std::string Where() const;
  std::string PeerName(int peer) const;
  std::string OpName(const P2POp& op) const;
  Status MpiFailure(int rc, const std::string& what) const {
    return Status::IOError(Prefix() + what + Where() + ": " + MpiErrorString(rc));
  }
  Status Invalid(const std::string& what) const { return Status::InvalidArgument(Prefix() + what + Where()); }
  // Defined, on the host, at most INT_MAX elements.
  Status CheckTensor(const Tensor& t, const std::string& what) const;
  Status CheckSummable(const Tensor& t, const std::string& what) const;
  Status CheckOp(const P2POp& op) const;
  Status Finish(Batch batch, const std::vector<MPI_Status>& statuses, int rc, const char* call);

  MPI_Comm comm_;
  int max_tag_cap_;
  int rank_ = 0, size_ = 1, max_tag_ = 0, world_rank_ = -1, world_size_ = 1;
  std::vector<int> world_ranks_;  // world rank of each group rank
  int64_t next_handle_ = 1;
  std::map<int64_t, Batch> pending_;
};

Result<std::unique_ptr<Transport>> MpiTransport::Create(MPI_Comm comm, int max_tag_cap) {
  std::unique_ptr<MpiTransport> t(new MpiTransport(comm, max_tag_cap));  // frees comm on every path
  t->world_rank_ = WorldRank();
  int rc = MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  if (rc != MPI_SUCCESS) return t->MpiFailure(rc, "MPI_Comm_set_errhandler");
  if ((rc = MPI_Comm_rank(comm, &t->rank_)) != MPI_SUCCESS) return t->MpiFailure(rc, "MPI_Comm_rank");
  if ((rc = MPI_Comm_size(comm, &t->size_)) != MPI_SUCCESS) return t->MpiFailure(rc, "MPI_Comm_size");
  if ((rc = MPI_Comm_size(MPI_COMM_WORLD, &t->world_size_)) != MPI_SUCCESS) return t->MpiFailure(rc, "MPI_Comm_size");
  int* tag_ub = nullptr;
  int flag = 0;
  if ((rc = MPI_Comm_get_attr(comm, MPI_TAG_UB, &tag_ub, &flag)) != MPI_SUCCESS) {
    return t->MpiFailure(rc, "MPI_Comm_get_attr(MPI_TAG_UB)");
  }
  t->max_tag_ = flag ? *tag_ub : 32767;  // the standard's guaranteed minimum
  if (max_tag_cap > 0) t->max_tag_ = std::min(t->max_tag_, max_tag_cap);

  MPI_Group group, world_group;
  if ((rc = MPI_Comm_group(comm, &group)) != MPI_SUCCESS) return t->MpiFailure(rc, "MPI_Comm_group");
  if ((rc = MPI_Comm_group(MPI_COMM_WORLD, &world_group)) != MPI_SUCCESS) {
    MPI_Group_free(&group);
    return t->MpiFailure(rc, "MPI_Comm_group(MPI_COMM_WORLD)");
  }
  std::vector<int> ranks(static_cast<size_t>(t->size_));
  for (int i = 0; i < t->size_; ++i) ranks[static_cast<size_t>(i)] = i;
  t->world_ranks_.resize(ranks.size());
  rc = MPI_Group_translate_ranks(group, t->size_, ranks.data(), world_group, t->world_ranks_.data());
  MPI_Group_free(&group);
  MPI_Group_free(&world_group);
  if (rc != MPI_SUCCESS) return t->MpiFailure(rc, "MPI_Group_translate_ranks");
  return std::unique_ptr<Transport>(std::move(t));
}

MpiTransport::~MpiTransport() {
  if (!pending_.empty()) {
    LogWarning("%s destroyed with %zu posted batches never waited; their buffers are kept until exit",
               Describe().c_str(), pending_.size());
    for (auto& [handle, batch] : pending_) Abandon(std::move(batch));
  }
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::string MpiTransport::Describe() const {
  std::string s = "mpi group of " + std::to_string(size_) + " (world ranks ";
  const size_t n = world_ranks_.size();
  for (size_t i = 0; i < n; ++i) {
    if (n > 16 && i == 8) {  // long lists: first 8, ..., last
      s += "...,";
      i = n - 1;
    }
    s += std::to_string(world_ranks_[i]) + (i + 1 < n ? "," : "");
  }
  return s + ")";
}

std::string MpiTransport::Where() const { return size_ == world_size_ ? "" : " in " + Describe(); }

std::string MpiTransport::PeerName(int peer) const {
  if (peer < 0 || peer >= size_) return "peer " + std::to_string(peer);
  return "peer " + std::to_string(peer) + " (world rank " + std::to_string(world_ranks_[static_cast<size_t>(peer)]) + ")";
}

std::string MpiTransport::OpName(const P2POp& op) const {
  std::string t = op.tensor.defined() ? op.tensor.Describe() : "an undefined tensor";
  if (op.kind == P2POp::kSend) return "send of " + t + " to " + PeerName(op.peer) + ", tag " + std::to_string(op.tag);
  return "receive of " + t + " from " + PeerName(op.peer) + ", tag " + std::to_string(op.tag);
}

Status MpiTransport::CheckTensor(const Tensor& t, const std::string& what) const {
  if (!t.defined()) return Invalid(what + ": undefined tensor");
  if (!t.device().is_cpu()) return Invalid(what + ": the MPI transport moves host tensors only, got " + t.Describe());
  if (t.numel() > INT_MAX) {
    return Invalid(what + ": " + t.Describe() + " has more than INT_MAX elements (not supported yet; split it)");
  }
  return Status::OK();
}

Status MpiTransport::CheckSummable(const Tensor& t, const std::string& what) const {
  BATON_RETURN_IF_ERROR(CheckTensor(t, what));
  if (t.dtype() != DType::kF32 && t.dtype() != DType::kF64) {
    return Invalid(what + ": sums take f32 or f64 tensors, got " + t.Describe());
  }
  return Status::OK();
}

Status MpiTransport::CheckOp(const P2POp& op) const {
  if (op.kind != P2POp::kSend && op.kind != P2POp::kRecv) {
    return Invalid("P2POp kind " + std::to_string(static_cast<int>(op.kind)) + " is neither kSend nor kRecv");
  }
  if (op.peer < 0 || op.peer >= size_) {
    return Invalid(OpName(op) + ": peer out of range [0, " + std::to_string(size_) + ")");
  }
  if (op.tag < 0 || op.tag > max_tag_) {
    std::string bound = std::to_string(max_tag_);
    if (max_tag_cap_ > 0) bound += " (MPI_TAG_UB capped by MpiTransportOptions::max_tag)";
    else bound += " (MPI_TAG_UB)";
    return Invalid(OpName(op) + ": tag " + std::to_string(op.tag) + " outside [0, " + bound + "]");
  }
  return CheckTensor(op.tensor, OpName(op));
}

Status MpiTransport::Exchange(const std::vector<P2POp>& ops) {
  BATON_ASSIGN_OR_RETURN(int64_t handle, Post(ops));
  return Wait(handle);
}

Result<int64_t> MpiTransport::Post(const std::vector<P2POp>& ops) {
  for (const P2POp& op : ops) BATON_RETURN_IF_ERROR(CheckOp(op));
  Batch batch;
  batch.ops = ops;
  batch.requests.assign(ops.size(), MPI_REQUEST_NULL);
  // All receives first, then all sends; nothing blocks, so the order each
  // side lists its ops in cannot deadlock.
  for (P2POp::Kind kind : {P2POp::kRecv, P2POp::kSend}) {
    for (size_t i = 0; i < ops.size(); ++i) {
      const P2POp& op = ops[i];
      if (op.kind != kind) continue;
      const int count = static_cast<int>(op.tensor.numel());
      const MPI_Datatype type = MpiType(op.tensor.dtype());
      int rc = kind == P2POp::kRecv
                   ? MPI_Irecv(op.tensor.raw(), count, type, op.peer, op.tag, comm_, &batch.requests[i])
                   : MPI_Isend(op.tensor.raw(), count, type, op.peer, op.tag, comm_, &batch.requests[i]);
      if (rc != MPI_SUCCESS) {
        Status st = MpiFailure(rc, std::string(kind == P2POp::kRecv ? "MPI_Irecv" : "MPI_Isend") + " for " + OpName(op));
        Abandon(std::move(batch));
        return st;
      }
    }
  }
  const int64_t handle = next_handle_++;
  pending_.emplace(handle, std::move(batch));
  return handle;
}

Status MpiTransport::Wait(int64_t handle) {
  auto it = pending_.find(handle);
  if (it == pending_.end()) {
    return Invalid("Wait(" + std::to_string(handle) + "): no such posted batch (already waited, or not from Post here)");
  }
  Batch batch = std::move(it->second);
  pending_.erase(it);
  std::vector<MPI_Status> statuses(batch.requests.size());
  const int rc = MPI_Waitall(static_cast<int>(batch.requests.size()), batch.requests.data(), statuses.data());
  return Finish(std::move(batch), statuses, rc, "MPI_Waitall");
}

Result<bool> MpiTransport::Test(int64_t handle) {
  auto it = pending_.find(handle);
  if (it == pending_.end()) {
    return Invalid("Test(" + std::to_string(handle) + "): no such posted batch (already completed, or not from Post here)");
  }
  std::vector<MPI_Status> statuses(it->second.requests.size());
  int done = 0;
  const int rc =
      MPI_Testall(static_cast<int>(it->second.requests.size()), it->second.requests.data(), &done, statuses.data());
  if (rc == MPI_SUCCESS && !done) return false;
  Batch batch = std::move(it->second);
  pending_.erase(it);
  BATON_RETURN_IF_ERROR(Finish(std::move(batch), statuses, rc, "MPI_Testall"));
  return true;
}

// The end of a completed (or failed) batch: errors by op, then the static-shape check of receives.
Status MpiTransport::Finish(Batch batch, const std::vector<MPI_Status>& statuses, int rc, const char* call) {
  const int n = static_cast<int>(batch.requests.size());
  if (rc != MPI_SUCCESS) {
    Status st;
    if (rc == MPI_ERR_IN_STATUS) {
      for (int i = 0; i < n && st.ok(); ++i) {
        int e = statuses[static_cast<size_t>(i)].MPI_ERROR;
        if (e != MPI_SUCCESS && e != MPI_ERR_PENDING) {
          st = MpiFailure(e, std::string(call) + ", " + OpName(batch.ops[static_cast<size_t>(i)]));
        }
      }
    }
    if (st.ok()) st = MpiFailure(rc, std::string(call) + " of a batch of " + std::to_string(n) + " ops");
    Abandon(std::move(batch));
    return st;
  }
  // Static shapes: a receive must get exactly the elements it expects.
  for (int i = 0; i < n; ++i) {
    const P2POp& op = batch.ops[static_cast<size_t>(i)];
    if (op.kind != P2POp::kRecv) continue;
    int count = 0;
    int get_rc = MPI_Get_count(&statuses[static_cast<size_t>(i)], MpiType(op.tensor.dtype()), &count);
    if (get_rc != MPI_SUCCESS) return MpiFailure(get_rc, "MPI_Get_count, " + OpName(op));
    if (count != op.tensor.numel()) {
      return Status::InvalidArgument(Prefix() + OpName(op) + ": got " +
                                     (count == MPI_UNDEFINED ? std::string("a partial element")
                                                             : std::to_string(count) + " elements") +
                                     ", expected " + std::to_string(op.tensor.numel()) +
                                     " (sender and receiver disagree on the shape or dtype)" + Where());
    }
  }
  return Status::OK();
}

Status MpiTransport::AllReduceSum(Tensor* t) {
  BATON_CHECK(t != nullptr, "null output");
  BATON_RETURN_IF_ERROR(CheckSummable(*t, "AllReduceSum"));
  if (size_ == 1) return Status::OK();
  const int p = size_;
  const int64_t n = t->numel();
  const size_t es = SizeOf(t->dtype());
  const MPI_Datatype type = MpiType(t->dtype());
  // Block j = elements [n*j/p, n*(j+1)/p): balanced, any n (even n < p).
  std::vector<int> counts(static_cast<size_t>(p)), displs(static_cast<size_t>(p));
  for (int j = 0; j < p; ++j) {
    displs[static_cast<size_t>(j)] = static_cast<int>(n * j / p);
    counts[static_cast<size_t>(j)] = static_cast<int>(n * (j + 1) / p - n * j / p);
  }
  const int m = counts[static_cast<size_t>(rank_)];
  std::vector<int> recv_counts(static_cast<size_t>(p), m), recv_displs(static_cast<size_t>(p));
  for (int i = 0; i < p; ++i) recv_displs[static_cast<size_t>(i)] = i * m;
  Tensor blocks = Tensor::Empty({static_cast<int64_t>(p) * m}, t->dtype());
  const std::string what = "AllReduceSum of " + t->Describe();
  int rc = MPI_Alltoallv(t->raw(), counts.data(), displs.data(), type, blocks.raw(), recv_counts.data(),
                         recv_displs.data(), type, comm_);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, "MPI_Alltoallv in " + what);
  char* out = static_cast<char*>(t->raw()) + static_cast<size_t>(displs[static_cast<size_t>(rank_)]) * es;
  OrderedSum(t->dtype(), blocks.raw(), p, m, out);
  rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, t->raw(), counts.data(), displs.data(), type, comm_);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, "MPI_Allgatherv in " + what);
  return Status::OK();
}

Status MpiTransport::AllReduceSum(std::vector<double>* values) {
  BATON_CHECK(values != nullptr, "null output");
  if (values->size() > static_cast<size_t>(INT_MAX / size_)) {
    return Invalid("AllReduceSum of " + std::to_string(values->size()) + " doubles: too many for the scalar path");
  }
  if (size_ == 1 || values->empty()) return Status::OK();
  const int n = static_cast<int>(values->size());
  std::vector<double> all(static_cast<size_t>(n) * static_cast<size_t>(size_));
  int rc = MPI_Allgather(values->data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, comm_);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, "MPI_Allgather in AllReduceSum of " + std::to_string(n) + " doubles");
  OrderedSum(all.data(), size_, n, values->data());
  return Status::OK();
}

Status MpiTransport::AllGather(const Tensor& mine, Tensor* all) {
  BATON_CHECK(all != nullptr, "null output");
  BATON_RETURN_IF_ERROR(CheckTensor(mine, "AllGather"));
  if (mine.rank() < 1) return Invalid("AllGather: needs a tensor with a first dimension, got " + mine.Describe());
  Shape shape = mine.shape();
  shape[0] *= size_;
  if (!all->defined()) *all = Tensor::Empty(shape, mine.dtype());
  BATON_RETURN_IF_ERROR(CheckTensor(*all, "AllGather output"));
  if (all->shape() != shape || all->dtype() != mine.dtype()) {
    return Invalid("AllGather of " + mine.Describe() + ": output is " + all->Describe() + ", expected " +
                   DTypeName(mine.dtype()) + ShapeString(shape));
  }
  const int m = static_cast<int>(mine.numel());
  const MPI_Datatype type = MpiType(mine.dtype());
  const char* own = static_cast<const char*>(all->raw()) + static_cast<size_t>(rank_) * mine.nbytes();
  const bool in_place = mine.raw() == own;
  int rc = MPI_Allgather(in_place ? MPI_IN_PLACE : mine.raw(), m, type, all->raw(), m, type, comm_);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, "MPI_Allgather of " + mine.Describe());
  return Status::OK();
}

Status MpiTransport::ReduceScatterSum(const Tensor& in, Tensor* mine) {
  BATON_CHECK(mine != nullptr, "null output");
  BATON_RETURN_IF_ERROR(CheckSummable(in, "ReduceScatterSum"));
  if (in.rank() < 1 || in.dim(0) % size_ != 0) {
    return Invalid("ReduceScatterSum of " + in.Describe() + ": dim 0 must split into " + std::to_string(size_) +
                   " equal row blocks");
  }
  Shape shape = in.shape();
  shape[0] /= size_;
  if (!mine->defined()) *mine = Tensor::Empty(shape, in.dtype());
  BATON_RETURN_IF_ERROR(CheckTensor(*mine, "ReduceScatterSum output"));
  if (mine->shape() != shape || mine->dtype() != in.dtype()) {
    return Invalid("ReduceScatterSum of " + in.Describe() + ": output is " + mine->Describe() + ", expected " +
                   DTypeName(in.dtype()) + ShapeString(shape));
  }
  const int m = static_cast<int>(mine->numel());
  if (size_ == 1) {
    if (mine->raw() != in.raw()) std::memmove(mine->raw(), in.raw(), in.nbytes());
    return Status::OK();
  }
  Tensor blocks = Tensor::Empty({in.numel()}, in.dtype());
  const MPI_Datatype type = MpiType(in.dtype());
  int rc = MPI_Alltoall(in.raw(), m, type, blocks.raw(), m, type, comm_);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, "MPI_Alltoall in ReduceScatterSum of " + in.Describe());
  OrderedSum(in.dtype(), blocks.raw(), size_, m, mine->raw());  // `in` was read in full, so `mine` may alias it
  return Status::OK();
}

Status MpiTransport::Broadcast(Tensor* t, int root) {
  BATON_CHECK(t != nullptr, "null output");
  BATON_RETURN_IF_ERROR(CheckTensor(*t, "Broadcast"));
  if (root < 0 || root >= size_) {
    return Invalid("Broadcast of " + t->Describe() + ": root " + std::to_string(root) + " out of range [0, " +
                   std::to_string(size_) + ")");
  }
  int rc = MPI_Bcast(t->raw(), static_cast<int>(t->numel()), MpiType(t->dtype()), root, comm_);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, "MPI_Bcast of " + t->Describe() + " from " + PeerName(root));
  return Status::OK();
}

Status MpiTransport::Barrier() {
  int rc = MPI_Barrier(comm_);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, "MPI_Barrier");
  return Status::OK();
}

Result<std::unique_ptr<Transport>> MpiTransport::Split(int color, int key) {
  if (color < 0) return Invalid("Split: color " + std::to_string(color) + " must be >= 0");
  MPI_Comm sub = MPI_COMM_NULL;
  int rc = MPI_Comm_split(comm_, color, key, &sub);
  if (rc != MPI_SUCCESS) {
    return MpiFailure(rc, "MPI_Comm_split(color " + std::to_string(color) + ", key " + std::to_string(key) + ")");
  }
  return Create(sub, max_tag_cap_);
}

}  // namespace

std::unique_ptr<Transport> NewMpiWorldTransport(const MpiTransportOptions& options) {
  BATON_CHECK(MpiWorld::initialized(), "NewMpiWorldTransport before MpiWorld::Init");
  BATON_CHECK(options.max_tag >= 0, "MpiTransportOptions::max_tag " << options.max_tag);
  MPI_Comm comm = MPI_COMM_NULL;
  Status st;
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  if (rc != MPI_SUCCESS) {
    st = Status::IOError("world rank " + std::to_string(WorldRank()) + ": MPI_Comm_dup(MPI_COMM_WORLD): " +
                         MpiErrorString(rc));
  } else {
    auto t = MpiTransport::Create(comm, options.max_tag);
    if (t.ok()) return std::move(t).value();
    st = t.status();
  }
  // No communicator at startup: nothing can run, so take the job down.
  MpiWorld::Init(nullptr, nullptr).Abort(st.WithContext("creating the MPI world transport"));
}

}  // namespace baton
