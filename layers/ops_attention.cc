// Checks and dispatch of the fused attention ops (ops.h).
#include "layers/op_checks.h"

namespace baton::ops {
using namespace internal;

namespace {
// Checks an attention call (qkv [rows, 3 hidden], out-like tensors [rows, hidden]); returns batch.
int64_t CheckAttention(const Tensor& qkv, int64_t seq_len, int64_t heads, const AttentionMask& mask, const Tensor& lse,
                       std::initializer_list<const Tensor*> like_qkv, std::initializer_list<const Tensor*> like_out,
                       const char* op) {
  const int64_t rows = Rows(qkv), hidden = Cols(qkv) / 3;
  BATON_CHECK(seq_len > 0 && heads > 0 && rows % seq_len == 0 && Cols(qkv) % 3 == 0 && hidden % heads == 0,
              op << ": qkv " << qkv.Describe() << " (expected [rows, 3 * heads * head_dim]), seq_len " << seq_len
                 << ", heads " << heads);
  const int64_t batch = rows / seq_len;
  for (const Tensor* t : like_qkv) {
    CheckShape(*t, qkv.shape(), op, "d_qkv");
    CheckSameType(qkv, *t, op);
  }
  for (const Tensor* t : like_out) {
    BATON_CHECK(Rows(*t) == rows && Cols(*t) == hidden,
                op << ": out/dout " << t->Describe() << ", expected [" << rows << ", " << hidden << "] for qkv "
                   << qkv.Describe());
    CheckSameType(qkv, *t, op);
  }
  CheckShape(lse, {batch, heads, seq_len}, op, "lse");
  CheckAccumulates(lse, qkv, op, "lse");
  BATON_CHECK(mask.prefix >= 0, op << ": mask prefix " << mask.prefix);
  for (const Tensor* t : {&mask.prefix_lengths, &mask.lengths}) {
    if (!t->defined()) continue;
    BATON_CHECK(t->dtype() == DType::kI32 && t->shape() == Shape{batch},
                op << ": mask lengths " << t->Describe() << ", expected i32[" << batch << "]");
    CheckSameDevice(qkv, *t, op);
  }
  return batch;
}
}  // namespace

void AttentionForward(const Tensor& qkv, int64_t seq_len, int64_t heads, const AttentionMask& mask, Tensor* out,
                      Tensor* lse) {
  const int64_t batch = CheckAttention(qkv, seq_len, heads, mask, *lse, {}, {out}, "AttentionForward");
  const int64_t head_dim = Cols(qkv) / 3 / heads;
  Dispatch(
      qkv, "AttentionForward",
      [&](auto t) {
        using T = decltype(t);
        cpu::AttentionForward<T>(P<T>(qkv), P<T>(out), P<T>(lse), batch, seq_len, heads, head_dim, mask.prefix,
                                 P<int32_t>(mask.prefix_lengths), P<int32_t>(mask.lengths));
      },
      [&](auto) {
        RequireBf16(qkv, "AttentionForward");
        cuda::AttentionForward(D(qkv), D(out), D<float>(lse), batch, seq_len, heads, head_dim, mask.prefix,
                               D<int32_t>(mask.prefix_lengths), D<int32_t>(mask.lengths));
      });
}

void AttentionBackward(const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse, int64_t seq_len,
                       int64_t heads, const AttentionMask& mask, Tensor* d_qkv) {
  const int64_t batch = CheckAttention(qkv, seq_len, heads, mask, lse, {d_qkv}, {&dout, &out}, "AttentionBackward");
  const int64_t head_dim = Cols(qkv) / 3 / heads;
  Dispatch(
      qkv, "AttentionBackward",
      [&](auto t) {
        using T = decltype(t);
        cpu::AttentionBackward<T>(P<T>(dout), P<T>(qkv), P<T>(out), P<T>(lse), P<T>(d_qkv), batch, seq_len, heads,
                                  head_dim, mask.prefix, P<int32_t>(mask.prefix_lengths), P<int32_t>(mask.lengths));
      },
      [&](auto) {
        RequireBf16(qkv, "AttentionBackward");
        cuda::AttentionBackward(D(dout), D(qkv), D(out), D<float>(lse), D(d_qkv), batch, seq_len, heads, head_dim,
                                mask.prefix, D<int32_t>(mask.prefix_lengths), D<int32_t>(mask.lengths));
      });
}

}  // namespace baton::ops
