// CheckStreamOrderedExchange (declared in pipeline/schedule_verifier.h): does
// a schedule work on a transport without message tags whose sends and
// receives run group after group on one ordered stream per rank (NCCL)?
//
// The model, from the executor (pipeline/stage_executor.cc): each run of
// consecutive communication actions of a rank is posted as one group; a
// rank's groups run in list order, group k+1 only after group k completed;
// a send or receive completes once the peer's matching operation is in the
// peer's current group (rendezvous, no eager buffering); the group completes
// when all its operations have. Messages between two ranks in one direction
// match in posting order. Messages a rank sends to itself are handed over in
// memory and are not part of any group.
#include <string>
#include <vector>

#include "pipeline/schedule_verifier.h"

namespace baton {
namespace {

bool IsSend(ActionKind k) { return k == ActionKind::kSendActivation || k == ActionKind::kSendGrad; }

// What a message carries; without tags this is what both sides must agree on.
struct Message {
  bool gradient;
  int microbatch;
  int receiving_chunk;  // global chunk of the receiving side
  bool operator==(const Message& o) const {
    return gradient == o.gradient && microbatch == o.microbatch && receiving_chunk == o.receiving_chunk;
  }
};

Message MessageOf(const PipelineSchedule& s, int rank, const Action& a) {
  const int g = GlobalChunk(s, rank, a.chunk);
  switch (a.kind) {
    case ActionKind::kSendActivation: return {false, a.microbatch, g + 1};
    case ActionKind::kSendGrad: return {true, a.microbatch, g - 1};
    case ActionKind::kRecvGrad: return {true, a.microbatch, g};
    default: return {false, a.microbatch, g};
  }
}

// One send or receive to another rank, as the transport sees it.
struct Op {
  int action;       // index into the rank's list
  int group;        // the rank's group it is posted in
  int partner = -1;  // index of the matching op in the peer's ops
  bool done = false;
};

// A run of consecutive communication actions: one group, ops [first_op, end_op).
struct Group {
  int first_action, last_action;
  int first_op, end_op;
};

struct RankStream {
  std::vector<Op> ops;
  std::vector<Group> groups;
  int current = 0;  // the group running now; groups.size() once all have completed
};

// Splits rank r's list into groups. A run made only of messages to itself
// (stages == 1) gives no group: nothing is posted.
RankStream Groups(const PipelineSchedule& s, int r) {
  RankStream st;
  const std::vector<Action>& list = s.ranks[r];
  const int n = static_cast<int>(list.size());
  for (int i = 0; i < n;) {
    if (!IsCommunication(list[i].kind)) {
      ++i;
      continue;
    }
    Group g{i, i, static_cast<int>(st.ops.size()), 0};
    for (; i < n && IsCommunication(list[i].kind); ++i) {
      g.last_action = i;
      if (list[i].peer == r) continue;
      st.ops.push_back(Op{i, static_cast<int>(st.groups.size())});
    }
    g.end_op = static_cast<int>(st.ops.size());
    if (g.end_op > g.first_op) st.groups.push_back(g);
  }
  return st;
}

std::string At(int rank, int index, const Action& a) {
  return "rank " + std::to_string(rank) + " action " + std::to_string(index) + " " + ActionToString(a);
}

// Indices into streams[rank].ops of rank's sends to `to` (or receives from
// `to`), in posting order.
std::vector<int> OpsWith(const PipelineSchedule& s, const RankStream& st, int rank, int to, bool sends) {
  std::vector<int> out;
  for (int k = 0; k < static_cast<int>(st.ops.size()); ++k) {
    const Action& a = s.ranks[rank][st.ops[k].action];
    if (a.peer == to && IsSend(a.kind) == sends) out.push_back(k);
  }
  return out;
}

// (a) Without tags the k-th send from `from` to `to` is taken by the k-th
// receive of `to` from `from`: both must be the same message. Links the
// matching ops as partners.
Status MatchInOrder(const PipelineSchedule& s, std::vector<RankStream>* streams, int from, int to) {
  RankStream& a = (*streams)[from];
  RankStream& b = (*streams)[to];
  const std::vector<int> sends = OpsWith(s, a, from, to, true);
  const std::vector<int> recvs = OpsWith(s, b, to, from, false);
  if (sends.size() != recvs.size()) {  // CheckScheduleStructure rules this out
    return Status::InvalidArgument("rank " + std::to_string(from) + " sends " + std::to_string(sends.size()) +
                                   " message(s) to rank " + std::to_string(to) + ", which receives " +
                                   std::to_string(recvs.size()));
  }
  for (size_t k = 0; k < sends.size(); ++k) {
    Op& send = a.ops[sends[k]];
    Op& recv = b.ops[recvs[k]];
    const Action& sa = s.ranks[from][send.action];
    const Action& ra = s.ranks[to][recv.action];
    if (!(MessageOf(s, from, sa) == MessageOf(s, to, ra))) {
      const std::string f = std::to_string(from), t = std::to_string(to), n = std::to_string(k);
      return Status::InvalidArgument("message order mismatch from rank " + f + " to rank " + t + ": send " + n +
                                     " of rank " + f + " to rank " + t + " is " + At(from, send.action, sa) +
                                     ", but receive " + n + " of rank " + t + " from rank " + f + " is " +
                                     At(to, recv.action, ra) +
                                     "; without message tags (NCCL) messages between two ranks match in posting order");
    }
    send.partner = recvs[k];
    recv.partner = sends[k];
  }
  return Status::OK();
}

// (b) Runs every rank's stream until no group can complete. An op completes
// when its partner is in the partner rank's current group.
void RunStreams(const PipelineSchedule& s, std::vector<RankStream>* streams) {
  auto& st = *streams;
  for (bool progress = true; progress;) {
    progress = false;
    for (int r = 0; r < static_cast<int>(st.size()); ++r) {
      while (st[r].current < static_cast<int>(st[r].groups.size())) {
        const Group& g = st[r].groups[st[r].current];
        bool complete = true;
        for (int k = g.first_op; k < g.end_op; ++k) {
          Op& op = st[r].ops[k];
          if (op.done) continue;
          RankStream& peer = st[s.ranks[r][op.action].peer];
          Op& partner = peer.ops[op.partner];
          if (partner.group == peer.current) {
            op.done = partner.done = true;
          } else {
            complete = false;
          }
        }
        if (!complete) break;
        ++st[r].current;
        progress = true;
      }
    }
  }
}

// "group 2 (actions 7-8: SendActivation(...), RecvGrad(...))"
std::string GroupToString(const PipelineSchedule& s, int r, const RankStream& st, int group) {
  const Group& g = st.groups[group];
  std::string out = "group " + std::to_string(group) + " (action";
  out += g.first_action == g.last_action ? " " + std::to_string(g.first_action)
                                         : "s " + std::to_string(g.first_action) + "-" + std::to_string(g.last_action);
  out += ":";
  for (int i = g.first_action; i <= g.last_action; ++i) {
    out += (i == g.first_action ? " " : ", ") + ActionToString(s.ranks[r][i]);
  }
  return out + ")";
}

// For every rank that did not finish: its current group and what each of its
// pending ops waits for. Empty when all ranks finished.
std::string DescribeDeadlock(const PipelineSchedule& s, const std::vector<RankStream>& st) {
  std::string out;
  for (int r = 0; r < static_cast<int>(st.size()); ++r) {
    if (st[r].current == static_cast<int>(st[r].groups.size())) continue;
    if (!out.empty()) out += "; ";
    out += "rank " + std::to_string(r) + " is stuck in its " + GroupToString(s, r, st[r], st[r].current);
    const Group& g = st[r].groups[st[r].current];
    for (int k = g.first_op; k < g.end_op; ++k) {
      const Op& op = st[r].ops[k];
      if (op.done) continue;
      const Action& a = s.ranks[r][op.action];
      const Op& partner = st[a.peer].ops[op.partner];
      const Action& other = s.ranks[a.peer][partner.action];
      out += ", where " + ActionToString(a) + " waits for " + At(a.peer, partner.action, other) +
             ", which is in its group " + std::to_string(partner.group) + " but rank " + std::to_string(a.peer) +
             " is in group " + std::to_string(st[a.peer].current);
    }
  }
  return out;
}

}  // namespace

Status CheckStreamOrderedExchange(const PipelineSchedule& s) {
  BATON_RETURN_IF_ERROR(CheckScheduleStructure(s));
  std::vector<RankStream> streams;
  for (int r = 0; r < s.stages; ++r) streams.push_back(Groups(s, r));
  for (int from = 0; from < s.stages; ++from) {
    for (int to = 0; to < s.stages; ++to) {
      if (from != to) BATON_RETURN_IF_ERROR(MatchInOrder(s, &streams, from, to));
    }
  }
  RunStreams(s, &streams);
  const std::string stuck = DescribeDeadlock(s, streams);
  if (!stuck.empty()) {
    return Status::InvalidArgument(
        "deadlock on the ordered communication streams (one group at a time per rank, sends and receives "
        "complete only together): " + stuck);
  }
  return Status::OK();
}

}  // namespace baton
