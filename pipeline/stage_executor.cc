#include "pipeline/stage_executor.h"

#include <cstdint>

#include "runtime/op_profile.h"

namespace baton {

StageExecutor::StageExecutor(const PipelineSchedule* schedule, int rank, std::vector<ChunkRunner*> chunks,
                             Transport* pipe, int64_t hidden, DType dtype, Device device)
    : schedule_(schedule), rank_(rank), chunks_(std::move(chunks)), pipe_(pipe), hidden_(hidden), dtype_(dtype),
      device_(device) {
  const Status tags = CheckScheduleTags(*schedule, *pipe);
  BATON_CHECK(tags.ok(), tags.message());
  BATON_CHECK(static_cast<int>(chunks_.size()) == schedule->virtual_stages,
              "rank " << rank << " has " << chunks_.size() << " chunks, the schedule " << schedule->virtual_stages);
  last_weight_action_.assign(chunks_.size(), SIZE_MAX);
  const std::vector<Action>& actions = schedule->ranks[rank];
  for (size_t i = 0; i < actions.size(); ++i)
    if (actions[i].kind == ActionKind::kBackward || actions[i].kind == ActionKind::kBackwardWeight)
      last_weight_action_[static_cast<size_t>(actions[i].chunk)] = i;
}

Tensor StageExecutor::Take(std::map<Key, Tensor>* store, Key key, const char* what) {
  auto it = store->find(key);
  BATON_CHECK(it != store->end(), what << " of micro-batch " << key.first << ", chunk " << key.second
                                       << " is not there: the schedule does not fit the executor");
  Tensor t = std::move(it->second);
  store->erase(it);
  return t;
}

namespace {
// A message's tag: (micro-batch, activation or gradient, receiving global chunk).
int64_t MessageTag(const PipelineSchedule& s, bool gradient, int microbatch, int receiving_global_chunk) {
  return (static_cast<int64_t>(microbatch) * 2 + (gradient ? 1 : 0)) * NumGlobalChunks(s) + receiving_global_chunk;
}
}  // namespace

Status CheckScheduleTags(const PipelineSchedule& schedule, const Transport& pipe) {
  const int64_t largest = MessageTag(schedule, true, schedule.microbatches - 1, NumGlobalChunks(schedule) - 1);
  if (largest <= pipe.max_tag()) return Status::OK();
  return Status::InvalidArgument("train.microbatches = " + std::to_string(schedule.microbatches) + " with " +
                                 std::to_string(NumGlobalChunks(schedule)) +
                                 " pipeline chunks (parallel.stages x parallel.virtual_stages) needs message tags up to " +
                                 std::to_string(largest) + ", but this MPI allows at most " +
                                 std::to_string(pipe.max_tag()) + "; use fewer micro-batches per step");
}

Result<int> StageExecutor::Tag(bool gradient, int microbatch, int receiving_global_chunk) const {
  const int64_t tag = MessageTag(*schedule_, gradient, microbatch, receiving_global_chunk);
  BATON_CHECK(tag <= pipe_->max_tag(), "tag " << tag << " above " << pipe_->max_tag() << ": CheckScheduleTags was not called");
  return static_cast<int>(tag);
}

Status StageExecutor::RunCommunication(size_t begin, size_t end, const std::vector<MicroBatch>& micro_batches) {
  const std::vector<Action>& actions = schedule_->ranks[rank_];
  std::vector<P2POp> sends, recvs;
  std::vector<std::pair<Key, bool>> received;  // where each receive goes: (key, is gradient)
  for (size_t i = begin; i < end; ++i) {
    const Action& a = actions[i];
    const Key key{a.microbatch, a.chunk};
    const MicroBatch& mb = micro_batches[a.microbatch];
    switch (a.kind) {
      case ActionKind::kSendActivation:
      case ActionKind::kSendGrad: {
        const bool grad = a.kind == ActionKind::kSendGrad;
        Tensor t = Take(grad ? &grad_out_ : &activation_out_, key, grad ? "input gradient" : "output");
        const int to_chunk = Global(a.chunk) + (grad ? -1 : 1);
        if (a.peer == rank_) {  // our own next/previous chunk: hand over in memory
          const int local = to_chunk / schedule_->stages;
          (grad ? grad_in_ : activation_in_)[{a.microbatch, local}] = std::move(t);
          break;
        }
        BATON_ASSIGN_OR_RETURN(int tag, Tag(grad, a.microbatch, to_chunk));
        sends.push_back(P2POp::Send(a.peer, tag, std::move(t)));
        break;
      }
      case ActionKind::kRecvActivation:
      case ActionKind::kRecvGrad: {
        const bool grad = a.kind == ActionKind::kRecvGrad;
        if (a.peer == rank_) break;  // already handed over by our own send
        BATON_ASSIGN_OR_RETURN(int tag, Tag(grad, a.microbatch, Global(a.chunk)));
        Tensor t = Tensor::Empty({mb.tokens.numel(), hidden_}, dtype_, device_);
        recvs.push_back(P2POp::Recv(a.peer, tag, t));
        received.push_back({key, grad});
        break;
      }
      default: BATON_CHECK(false, "not a communication action: " << ActionToString(a));
    }
  }
  // In-order transports (NCCL): one group, so that neighbours sending to each other never
  // deadlock; the compute stream then waits for those sends too.
  if (!pipe_->matches_by_tag() && !recvs.empty()) {
    recvs.insert(recvs.begin(), sends.begin(), sends.end());
    sends.clear();
  }
  if (!sends.empty()) {
    BATON_ASSIGN_OR_RETURN(int64_t handle, pipe_->Post(sends));
    pending_sends_.push_back(handle);
  }
  if (!recvs.empty()) {
    BATON_ASSIGN_OR_RETURN(int64_t handle, pipe_->Post(recvs));
    BATON_RETURN_IF_ERROR(pipe_->Wait(handle));
    const size_t first = recvs.size() - received.size();  // the receives come last
    for (size_t i = 0; i < received.size(); ++i)
      (received[i].second ? grad_in_ : activation_in_)[received[i].first] = recvs[first + i].tensor;
  }
  return Status::OK();
}

Status StageExecutor::ReleaseCompletedSends() {
  for (size_t i = 0; i < pending_sends_.size();) {
    BATON_ASSIGN_OR_RETURN(bool done, pipe_->Test(pending_sends_[i]));
    if (done) {
      pending_sends_.erase(pending_sends_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  return Status::OK();
}

Result<double> StageExecutor::RunStep(const std::vector<MicroBatch>& micro_batches) {
  BATON_CHECK(static_cast<int>(micro_batches.size()) == schedule_->microbatches,
              micro_batches.size() << " micro-batches for a schedule of " << schedule_->microbatches);
  const std::vector<Action>& actions = schedule_->ranks[rank_];
  double loss_sum = 0;
  for (size_t i = 0; i < actions.size();) {
    const Action& a = actions[i];
    if (IsCommunication(a.kind)) {
      size_t end = i;
      while (end < actions.size() && IsCommunication(actions[end].kind)) ++end;
      BATON_RETURN_IF_ERROR(RunCommunication(i, end, micro_batches));
      i = end;
      continue;
    }
    BATON_RETURN_IF_ERROR(ReleaseCompletedSends());
    const Key key{a.microbatch, a.chunk};
    ChunkRunner* chunk = a.kind == ActionKind::kOptimizerStep ? nullptr : chunks_[a.chunk];
    const MicroBatch* mb = a.microbatch >= 0 ? &micro_batches[a.microbatch] : nullptr;
    ChunkRunner::LayerDone layer_done;
    if (gradients_ready_ && i == last_weight_action_[static_cast<size_t>(std::max(a.chunk, 0))]) {
      const int v = a.chunk;
      layer_done = [this, v](size_t layer) { gradients_ready_(v, layer); };
    }
    switch (a.kind) {
      case ActionKind::kForward: {
        OpProfile::Scope timed("phase: pipeline forward");
        Tensor in = IsFirst(a.chunk) ? Tensor() : Take(&activation_in_, key, "input activation");
        Tensor out = chunk->Forward(a.microbatch, *mb, in);
        if (IsLast(a.chunk)) loss_sum += out.data<double>()[0];
        else activation_out_[key] = std::move(out);
        break;
      }
      case ActionKind::kBackward:
      case ActionKind::kBackwardInput: {
        OpProfile::Scope timed("phase: pipeline backward");
        Tensor grad = IsLast(a.chunk) ? Tensor() : Take(&grad_in_, key, "output gradient");
        Tensor dx = a.kind == ActionKind::kBackward ? chunk->Backward(a.microbatch, *mb, grad, layer_done)
                                                    : chunk->BackwardInput(a.microbatch, *mb, grad);
        if (!IsFirst(a.chunk)) grad_out_[key] = std::move(dx);
        break;
      }
      case ActionKind::kBackwardWeight: {
        OpProfile::Scope timed("phase: pipeline weight gradients");
        chunk->BackwardWeight(a.microbatch, *mb, layer_done);
        break;
      }
      case ActionKind::kOptimizerStep: break;  // the trainer's part, after the step's communication
      default: BATON_CHECK(false, "unexpected action " << ActionToString(a));
    }
    ++i;
  }
  for (int64_t handle : pending_sends_) BATON_RETURN_IF_ERROR(pipe_->Wait(handle));
  pending_sends_.clear();
  BATON_CHECK(activation_in_.empty() && activation_out_.empty() && grad_in_.empty() && grad_out_.empty(),
              "rank " << rank_ << " ends the step with unsent or unused tensors: the schedule does not fit");
  return loss_sum;
}

}  // namespace baton
