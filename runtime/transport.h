// The communication layer: point-to-point exchange of activations and
// gradients between pipeline stages, and the collectives the trainer needs
// (data-parallel gradient reduction, sharded optimizer gathers, scalar
// reductions). One interface, two implementations: MPI (runtime/mpi_transport.h,
// host tensors) and NCCL (runtime/nccl_transport.h, tensors on the GPU).
//
// A Transport is a group of ranks. Ranks are numbered 0..size()-1 within the
// group; peers in P2POp are group ranks. Every operation is collective over
// the ranks it involves: all members of the group call the collectives in the
// same order with the same shapes and dtypes (static shapes, no handshake).
//
// Errors come back as Status naming the operation, the peer/tag and this
// process's world rank. After a communication error the transport (and
// usually the job) is unusable: the caller reports and calls MpiWorld::Abort.
//
// Not thread-safe: one thread drives a Transport.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

// One point-to-point operation of a batch. The tensor is contiguous and its
// shape and dtype are known to both sides: a receive fills a tensor the caller
// allocated with exactly the shape the sender sends.
struct P2POp {
  enum Kind { kSend, kRecv } kind;
  int peer;  // rank in this transport's group
  int tag;   // 0 <= tag <= Transport::max_tag(); the caller encodes (kind, microbatch, chunk)
  Tensor tensor;

  static P2POp Send(int peer, int tag, Tensor t) { return P2POp{kSend, peer, tag, std::move(t)}; }
  static P2POp Recv(int peer, int tag, Tensor t) { return P2POp{kRecv, peer, tag, std::move(t)}; }
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The largest tag a P2POp may carry (MPI: MPI_TAG_UB, possibly capped lower).
  virtual int max_tag() const = 0;
  // True when tags keep messages apart (MPI). False (NCCL): tags are only
  // checked, messages between two ranks in one direction match in posting
  // order, and each Post is executed after the previous one completes (one
  // stream), so a schedule must pass CheckStreamOrderedExchange.
  virtual bool matches_by_tag() const { return true; }

  // Posts every op of the batch together (all receives, then all sends, none
  // blocking) and waits for all of them: neighbours that exchange in both
  // directions never deadlock, whatever order each lists its ops. Messages
  // between the same pair with the same tag match in posting order; different
  // tags keep messages apart.
  virtual Status Exchange(const std::vector<P2POp>& ops) = 0;

  // Asynchronous form: validates and posts the batch, returns a handle; Wait
  // completes it (exactly once). Sends copy nothing: the caller leaves the
  // tensors unmodified, and does not read receive tensors, until Wait returns.
  // (The transport keeps a reference to each tensor's buffer meanwhile, so
  // they stay allocated even if the caller drops them.) Several batches may be
  // in flight; they may be waited in any order.
  virtual Result<int64_t> Post(const std::vector<P2POp>& ops) = 0;
  virtual Status Wait(int64_t handle) = 0;
  // Completes the batch if it is done, without blocking: true (and the handle
  // is spent, its buffers released) or false (still in flight; Test or Wait later).
  virtual Result<bool> Test(int64_t handle) = 0;

  // Collectives over the whole group, in place where it says so. Sums take f32
  // or f64 tensors and are deterministic: every element is summed in rank
  // order, ((x0 + x1) + x2) + ..., in the tensor's own dtype, so the result is
  // bitwise the same on every rank and every run, and equals that ordered sum
  // computed locally (see mpi_transport.cc for how).
  virtual Status AllReduceSum(Tensor* t) = 0;
  // Small scalar vectors (loss, norms); every rank passes the same length.
  virtual Status AllReduceSum(std::vector<double>* values) = 0;
  // `all` = the `mine` of every rank concatenated along dim 0 in rank order;
  // shape [size() * mine.dim(0), ...]. Allocated here when undefined, else
  // checked. `mine` may be the view all->Rows(...) of this rank's own block
  // (in-place gather of shards). Any dtype.
  virtual Status AllGather(const Tensor& mine, Tensor* all) = 0;
  // `in` holds size() equal row blocks; `mine` = sum over ranks of block
  // rank(), shape [in.dim(0) / size(), ...]. Allocated when undefined, else
  // checked; it may be a view of its own block of `in`. Same ordered sum as
  // AllReduceSum.
  virtual Status ReduceScatterSum(const Tensor& in, Tensor* mine) = 0;
  // In place: every rank ends with root's contents. Any dtype.
  virtual Status Broadcast(Tensor* t, int root) = 0;
  virtual Status Barrier() = 0;

  // A sub-group: the ranks with the same color (>= 0), ordered by key, then by
  // rank here (MPI_Comm_split). Collective over this group. Create sub-groups
  // once at startup, never per message.
  virtual Result<std::unique_ptr<Transport>> Split(int color, int key) = 0;

  // "mpi group of 4 (world ranks 0,2,4,6)".
  virtual std::string Describe() const = 0;
};

// Every rank's few numbers, rank after rank (n values from each rank, the same n
// everywhere): how ranks agree on outcomes ("did your write succeed, how many
// bytes, how long"). A null group is a job of one.
inline Result<std::vector<double>> AllGatherValues(Transport* group, const std::vector<double>& mine) {
  if (!group || group->size() == 1) return mine;
  Tensor t = Tensor::Empty({static_cast<int64_t>(mine.size())}, DType::kF64);
  std::copy(mine.begin(), mine.end(), t.data<double>());
  Tensor all;
  BATON_RETURN_IF_ERROR(group->AllGather(t, &all));
  return std::vector<double>(all.data<double>(), all.data<double>() + all.numel());
}

}  // namespace baton
