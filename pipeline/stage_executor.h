// Runs one pipeline rank's action list (pipeline/schedule.h) for one training
// step: forward and backward of its model chunks through ChunkRunners, and
// the activations and gradients exchanged with neighbouring ranks through a
// Transport. It does nothing a schedule does not say; the verifier has
// already shown that the lists of all ranks fit together.
//
// Communication: consecutive send/recv actions are posted together. Sends
// never hold up compute: they are posted, their buffers released as soon as
// they complete (checked before every compute action), and any still in
// flight are completed at the end of the step. Receives are waited for before
// the next action (on a GPU: the compute stream waits, the host goes on). On
// a transport that matches by tag (MPI) sends and receives are posted as two
// batches; on one that matches in order on one stream (NCCL) as one group,
// so that two neighbours sending to each other never deadlock. A message to
// the same rank (one rank holding several virtual chunks) is handed over in
// memory.
//
// Each compute action is timed under an OpProfile phase ("phase: pipeline
// forward", "... backward", "... weight gradients") for the pipeline benchmark.
#pragma once

#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "layers/layer.h"
#include "pipeline/chunk_runner.h"
#include "pipeline/schedule.h"
#include "runtime/transport.h"

namespace baton {

// Fails when the schedule's message tags do not fit `pipe` (an MPI may allow as
// few as 32767): checked before a run starts, not when the first large tag is sent.
Status CheckScheduleTags(const PipelineSchedule& schedule, const Transport& pipe);

class StageExecutor {
 public:
  // chunks[v] runs local chunk v of pipeline rank `rank`; `pipe` is the pipeline group
  // (its rank() is `rank`). Activations are [batch*seq, hidden] tensors of `dtype`.
  StageExecutor(const PipelineSchedule* schedule, int rank, std::vector<ChunkRunner*> chunks, Transport* pipe,
                int64_t hidden, DType dtype, Device device = Device::CPU());

  // Runs every action before the optimizer step on `micro_batches` (indexed by the
  // schedule's micro-batch ids). Returns the sum of the token losses this rank
  // computed (non-zero only on the rank holding the last chunk).
  Result<double> RunStep(const std::vector<MicroBatch>& micro_batches);

  // Called (chunk, layer) when a layer's weight gradients for the whole step are
  // complete on the compute stream: after its chunk's last backward (or W) action.
  void set_gradients_ready(std::function<void(int chunk, size_t layer)> ready) { gradients_ready_ = std::move(ready); }

 private:
  using Key = std::pair<int, int>;  // (micro-batch, local chunk)

  Status RunCommunication(size_t begin, size_t end, const std::vector<MicroBatch>& micro_batches);
  Status ReleaseCompletedSends();
  Result<int> Tag(bool gradient, int microbatch, int receiving_global_chunk) const;
  int Global(int local_chunk) const { return local_chunk * schedule_->stages + rank_; }
  bool IsFirst(int local_chunk) const { return Global(local_chunk) == 0; }
  bool IsLast(int local_chunk) const { return Global(local_chunk) == NumGlobalChunks(*schedule_) - 1; }
  static Tensor Take(std::map<Key, Tensor>* store, Key key, const char* what);

  const PipelineSchedule* schedule_;
  int rank_;
  std::vector<ChunkRunner*> chunks_;
  Transport* pipe_;
  int64_t hidden_;
  DType dtype_;
  Device device_;
  // Per step: outputs waiting to be sent, inputs received and waiting to be used.
  std::map<Key, Tensor> activation_out_, activation_in_, grad_out_, grad_in_;
  std::vector<int64_t> pending_sends_;
  std::vector<size_t> last_weight_action_;  // per local chunk: its last B+W or W action
  std::function<void(int, size_t)> gradients_ready_;
};

}  // namespace baton
