// Fused attention forward, FlashAttention-2 style: a CTA owns BM = 16 x MT x
// WARPS query rows of one (batch, head), each warp 16 x MT of them, and streams
// key/value blocks of BN rows through shared memory (cp.async, double-buffered)
// while each warp keeps its scores, probabilities and output in registers
// (online softmax in the log2 domain). Key blocks no query of the CTA can see
// (beyond the causal diagonal or the example's length) are never loaded; the
// element-wise mask runs only on blocks that are partly visible to a warp.
// q, k and v are read in place from the packed qkv projection (q | k | v per
// row, rows 3 hidden apart); out has rows hidden apart.
#include <algorithm>
#include <cmath>

#include "layers/cuda/attention_tile.cuh"
#include "layers/cuda/kernels.h"

namespace baton::cuda {
namespace attention {
namespace {

template <int D, int WARPS, int MT, int BN>
struct ForwardConfig {
  static constexpr int kThreads = WARPS * 32;
  static constexpr int kBM = 16 * MT * WARPS;
  static constexpr int kSD = D + 8;  // padded shared row stride (elements)
  // Q [BM], then K and V double-buffered [2][BN] each.
  static constexpr int kSmemBytes = (kBM + 4 * BN) * kSD * 2;
};

// MIN_CTAS: CTAs per SM to fit (caps registers at 64K / (MIN_CTAS * threads)).
template <int D, int WARPS, int MT, int BN, int MIN_CTAS>
__global__ void __launch_bounds__(WARPS * 32, MIN_CTAS)
    ForwardKernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                  bf16* __restrict__ out, float* __restrict__ lse, int heads, int seq, int prefix,
                  const int32_t* __restrict__ prefix_lengths, const int32_t* __restrict__ lengths,
                  float scale_log2, int num_qblocks) {
  using Cfg = ForwardConfig<D, WARPS, MT, BN>;
  constexpr int BM = Cfg::kBM, SD = Cfg::kSD, kThreads = Cfg::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sK = sQ + BM * SD;      // [2][BN][SD]
  bf16* sV = sK + 2 * BN * SD;  // [2][BN][SD]

  // Consecutive CTAs share a (batch, head), so the CTAs resident at once read the K and V
  // of few heads and those stay in L2 (ordered the other way, K and V came from DRAM
  // again for every query block). Within a head the longest (causal: last) blocks go first.
  const int bh = static_cast<int>(blockIdx.x) / num_qblocks;
  const int qb = num_qblocks - 1 - static_cast<int>(blockIdx.x) % num_qblocks;
  const int b = bh / heads, h = bh % heads;
  const int q0 = qb * BM;
  const ExampleMask mask(b, seq, prefix, prefix_lengths, lengths);

  // Rows of q, k, v (columns of the packed qkv) are in_stride apart, rows of out out_stride.
  const int out_stride = heads * D, in_stride = 3 * out_stride;
  const int64_t in_offset = static_cast<int64_t>(b) * seq * in_stride + static_cast<int64_t>(h) * D;
  const int64_t out_offset = static_cast<int64_t>(b) * seq * out_stride + static_cast<int64_t>(h) * D;
  const bf16* kg = k + in_offset;
  const bf16* vg = v + in_offset;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int warp_q0 = q0 + warp * 16 * MT;
  // This thread's query rows: warp_q0 + 16 m + g + 8 r for row tile m, half r.
  auto row_of = [&](int m, int r) { return warp_q0 + 16 * m + g + 8 * r; };

  const int key_end = mask.KeyEnd(min(q0 + BM, seq));
  const int num_kblocks = (key_end + BN - 1) / BN;

  LoadTile<BM, D, kThreads>(sQ, q + in_offset + q0 * in_stride, in_stride, seq - q0, q);
  if (num_kblocks > 0) {
    LoadTile<BN, D, kThreads>(sK, kg, in_stride, mask.len, k);
    LoadTile<BN, D, kThreads>(sV, vg, in_stride, mask.len, v);
  }
  CpAsyncCommit();

  float o[MT][D / 8][4];
  Zero(o);
  float row_max[MT][2], row_sum[MT][2];  // running max of scale_log2 * s; this thread's part of the sum
#pragma unroll
  for (int m = 0; m < MT; ++m) row_max[m][0] = row_max[m][1] = -INFINITY, row_sum[m][0] = row_sum[m][1] = 0.f;

  for (int kb = 0; kb < num_kblocks; ++kb) {
    const int buf = kb & 1;
    PrefetchNextKeyBlock<BN, D, kThreads>(sK, sV, buf, kb, num_kblocks, kg, vg, in_stride, mask.len);
    const bf16* k_tile = sK + buf * BN * SD;
    const bf16* v_tile = sV + buf * BN * SD;
    const int n0 = kb * BN;

    float s[MT][BN / 8][4];
    Zero(s);
    MmaABt<D, BN, SD, MT>(s, sQ + warp * 16 * MT * SD, k_tile, lane);

    const bool all_visible = mask.AllVisible(warp_q0, n0 + BN);
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[m][j][e] *= scale_log2;
    if (!all_visible) {
#pragma unroll
      for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int j = 0; j < BN / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            s[m][j][e] = mask.Visible(row_of(m, e >> 1), n0 + 8 * j + 2 * t + (e & 1)) ? s[m][j][e] : -INFINITY;
    }

#pragma unroll
    for (int m = 0; m < MT; ++m) {
      // Online softmax: new running max per row (a row's keys live in the 4 threads of a quad).
      float new_max[2] = {row_max[m][0], row_max[m][1]};
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        new_max[0] = fmaxf(new_max[0], fmaxf(s[m][j][0], s[m][j][1]));
        new_max[1] = fmaxf(new_max[1], fmaxf(s[m][j][2], s[m][j][3]));
      }
      float rescale[2], base[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        new_max[r] = fmaxf(new_max[r], __shfl_xor_sync(0xffffffffu, new_max[r], 1));
        new_max[r] = fmaxf(new_max[r], __shfl_xor_sync(0xffffffffu, new_max[r], 2));
        // A row with nothing visible yet keeps max -inf; subtracting 0 keeps its exps at 0 (not NaN).
        base[r] = new_max[r] == -INFINITY ? 0.f : new_max[r];
        rescale[r] = Exp2(row_max[m][r] - base[r]);
        row_max[m][r] = new_max[r];
        row_sum[m][r] *= rescale[r];
      }
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[m][j][e] = Exp2(s[m][j][e] - base[e >> 1]);
          row_sum[m][e >> 1] += s[m][j][e];
        }
#pragma unroll
      for (int j = 0; j < D / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[m][j][e] *= rescale[e >> 1];
    }

    uint32_t p[MT][BN / 16][4];
#pragma unroll
    for (int m = 0; m < MT; ++m) AccumulatorToA<BN>(s[m], p[m]);
    MmaAregB<BN, D, SD, MT>(o, p, v_tile, lane);
    __syncthreads();  // every warp is done with this buffer before it is refilled
  }
  CpAsyncWait<0>();
  __syncthreads();

  float* lse_bh = lse + static_cast<int64_t>(bh) * seq;
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = row_sum[m][r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv_sum = sum > 0.f ? 1.f / sum : 0.f;
      // lse = ln(sum 2^(x - max)) + max ln 2, with x = log2(e) * scale * s.
      if (t == 0 && row_of(m, r) < seq) lse_bh[row_of(m, r)] = sum > 0.f ? logf(sum) + row_max[m][r] * kLn2 : -INFINITY;
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        o[m][j][2 * r] *= inv_sum;
        o[m][j][2 * r + 1] *= inv_sum;
      }
    }
  // Stage the warp's rows through its own (no longer needed) Q rows for 16-byte stores.
  bf16* stage = sQ + warp * 16 * MT * SD;
  AccumulatorToSmem<MT, D, SD>(o, 1.f, stage, lane);
  __syncwarp();
  StoreWarpRows<16 * MT, D>(stage, out + out_offset + warp_q0 * out_stride, out_stride, seq - warp_q0, lane);
}

template <int D, int WARPS, int MT, int BN, int MIN_CTAS>
void LaunchForward(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int batch, int seq, int heads,
                   int prefix, const int32_t* prefix_lengths, const int32_t* lengths, float scale_log2) {
  using Cfg = ForwardConfig<D, WARPS, MT, BN>;
  auto kernel = ForwardKernel<D, WARPS, MT, BN, MIN_CTAS>;
  if (Cfg::kSmemBytes > 48 * 1024)
    BATON_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmemBytes));
  const int num_qblocks = (seq + Cfg::kBM - 1) / Cfg::kBM;
  const int64_t blocks = static_cast<int64_t>(num_qblocks) * batch * heads;
  kernel<<<static_cast<unsigned>(blocks), Cfg::kThreads, Cfg::kSmemBytes, ComputeStream()>>>(
      q, k, v, out, lse, heads, seq, prefix, prefix_lengths, lengths, scale_log2, num_qblocks);
  BATON_CUDA_CHECK_LAUNCH("attention forward");
}

}  // namespace
}  // namespace attention

void AttentionForward(const Bf16* qkv, Bf16* out, float* lse, int64_t batch, int64_t seq, int64_t heads,
                      int64_t head_dim, int64_t prefix, const int32_t* prefix_lengths, const int32_t* lengths) {
  using attention::bf16;
  const int64_t hidden = heads * head_dim;
  const Bf16 *q = qkv, *k = qkv + hidden, *v = qkv + 2 * hidden;
  attention::CheckAttentionArgs("AttentionForward", head_dim, {q, k, v, out}, {3 * hidden, hidden}, batch, seq,
                                heads);
  if (batch == 0 || seq == 0 || heads == 0) return;
  const float scale_log2 = static_cast<float>(attention::kLog2e / std::sqrt(static_cast<double>(head_dim)));
  const int pre = static_cast<int>(std::min<int64_t>(std::max<int64_t>(prefix, 0), seq));
  const auto* qb = reinterpret_cast<const bf16*>(q);
  const auto* kb = reinterpret_cast<const bf16*>(k);
  const auto* vb = reinterpret_cast<const bf16*>(v);
  auto* ob = reinterpret_cast<bf16*>(out);
  const int B = static_cast<int>(batch), S = static_cast<int>(seq), H = static_cast<int>(heads);
  // <head_dim, warps, row tiles of 16 per warp, key block, CTAs per SM>, the fastest of the
  // variants timed on an H100 (head_dim 64: GPT-2 124M's shapes; 128: batch 16, seq 2048, 16 heads).
  switch (head_dim) {
    case 32:
      attention::LaunchForward<32, 4, 1, 64, 4>(qb, kb, vb, ob, lse, B, S, H, pre, prefix_lengths, lengths, scale_log2);
      break;
    case 64:
      attention::LaunchForward<64, 4, 1, 64, 4>(qb, kb, vb, ob, lse, B, S, H, pre, prefix_lengths, lengths, scale_log2);
      break;
    default:
      attention::LaunchForward<128, 4, 2, 32, 2>(qb, kb, vb, ob, lse, B, S, H, pre, prefix_lengths, lengths,
                                                 scale_log2);
      break;
  }
}

}  // namespace baton::cuda
