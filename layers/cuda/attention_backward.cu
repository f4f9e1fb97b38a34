// Fused attention backward, deterministic (no atomics), in three kernels:
//   1. DeltaKernel: D_i = dout_i . out_i (fp32, into workspace slot 1).
//   2. DkDvKernel: a CTA owns BN = 16 x MT x WARPS keys of one (batch, head),
//      each warp 16 x MT of them, and loops over the query blocks that see them
//      (BM rows each, Q / dout / lse / D double-buffered with cp.async):
//        S^T = K Q^T, P^T = exp(scale S^T - lse), dV += P^T dout,
//        dP^T = V dout^T, dS^T = P^T (dP^T - D), dK += dS^T Q.
//   3. DqKernel: a CTA owns BM = 16 x MT x WARPS queries, each warp 16 x MT,
//      and loops over the visible key blocks, recomputing S, P and dP:
//        dQ += dS K.
// Every sum runs in an order fixed by the shapes, so the bits are reproducible.
// Kernel 3 repeats two of kernel 2's products: the price of not accumulating dQ
// with atomics (FlashAttention-2 does) or in per-key-block fp32 copies.
// q, k, v are read in place from the packed qkv and dq, dk, dv written in place
// into d_qkv (rows 3 hidden apart); out and dout have rows hidden apart.
#include <algorithm>
#include <cmath>

#include "layers/cuda/attention_tile.cuh"
#include "layers/cuda/kernels.h"

namespace baton::cuda {
namespace attention {
namespace {

// One group of D/8 threads per (row, head), 8 elements (16 bytes) per thread.
template <int D>
__global__ void __launch_bounds__(256)
    DeltaKernel(const bf16* __restrict__ dout, const bf16* __restrict__ out, float* __restrict__ delta, int64_t rows,
                int seq, int heads) {
  constexpr int kGroup = D / 8;
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * 256 + threadIdx.x) / kGroup;  // (b * seq + i) * heads + h
  const int part = threadIdx.x % kGroup;
  float sum = 0.f;
  if (r < rows) {
    const uint4 a = *reinterpret_cast<const uint4*>(dout + r * D + part * 8);
    const uint4 c = *reinterpret_cast<const uint4*>(out + r * D + part * 8);
    const __nv_bfloat162* a2 = reinterpret_cast<const __nv_bfloat162*>(&a);
    const __nv_bfloat162* c2 = reinterpret_cast<const __nv_bfloat162*>(&c);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 x = __bfloat1622float2(a2[e]), y = __bfloat1622float2(c2[e]);
      sum = fmaf(x.x, y.x, sum);
      sum = fmaf(x.y, y.y, sum);
    }
  }
#pragma unroll
  for (int offset = kGroup / 2; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (r < rows && part == 0) {
    const int64_t h = r % heads, bi = r / heads, i = bi % seq, b = bi / seq;
    delta[(b * heads + h) * seq + i] = sum;
  }
}

template <int D, int WARPS, int MT, int BM>
struct DkDvConfig {
  static constexpr int kThreads = WARPS * 32;
  static constexpr int kBN = 16 * MT * WARPS;
  static constexpr int kSD = D + 8;
  // K, V [BN]; Q, dout double-buffered [2][BM]; then lse, D as fp32 [2][BM].
  static constexpr int kTileBytes = (2 * kBN + 4 * BM) * kSD * 2;
  static constexpr int kSmemBytes = kTileBytes + 4 * BM * 4;
};

template <int D, int WARPS, int MT, int BM, int MIN_CTAS>
__global__ void __launch_bounds__(WARPS * 32, MIN_CTAS)
    DkDvKernel(const bf16* __restrict__ dout, const bf16* __restrict__ q, const bf16* __restrict__ k,
               const bf16* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ delta,
               bf16* __restrict__ dk, bf16* __restrict__ dv, int heads, int seq, int prefix,
               const int32_t* __restrict__ prefix_lengths, const int32_t* __restrict__ lengths, float scale,
               float scale_log2) {
  using Cfg = DkDvConfig<D, WARPS, MT, BM>;
  constexpr int BN = Cfg::kBN, SD = Cfg::kSD, kThreads = Cfg::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sK = reinterpret_cast<bf16*>(smem);
  bf16* sV = sK + BN * SD;
  bf16* sQ = sV + BN * SD;       // [2][BM][SD]
  bf16* sdO = sQ + 2 * BM * SD;  // [2][BM][SD]
  float* sLse = reinterpret_cast<float*>(smem + Cfg::kTileBytes);  // [2][BM]
  float* sDelta = sLse + 2 * BM;                                   // [2][BM]

  // Consecutive CTAs share a (batch, head), for L2 reuse of its Q and dout (see
  // ForwardKernel). Causal: the first key blocks are seen by the most queries; they go first.
  const int num_kblocks = (seq + BN - 1) / BN;
  const int bh = static_cast<int>(blockIdx.x) / num_kblocks;
  const int kb = static_cast<int>(blockIdx.x) % num_kblocks;
  const int b = bh / heads, h = bh % heads;
  const int n0 = kb * BN;
  const ExampleMask mask(b, seq, prefix, prefix_lengths, lengths);

  // Rows of q, k, v, dk, dv (columns of qkv / d_qkv) are in_stride apart, rows of dout out_stride.
  const int out_stride = heads * D, in_stride = 3 * out_stride;
  const int64_t in_offset = static_cast<int64_t>(b) * seq * in_stride + static_cast<int64_t>(h) * D;
  const int64_t out_offset = static_cast<int64_t>(b) * seq * out_stride + static_cast<int64_t>(h) * D;
  const float* lse_bh = lse + static_cast<int64_t>(bh) * seq;
  const float* delta_bh = delta + static_cast<int64_t>(bh) * seq;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int warp_k0 = n0 + warp * 16 * MT;
  // This thread's key rows: warp_k0 + 16 m + g + 8 r for row tile m, half r.
  auto key_of = [&](int m, int r) { return warp_k0 + 16 * m + g + 8 * r; };

  // Queries that see a key of this block: all (if it starts inside the prefix), else
  // those from its first key on; none when it lies entirely in the padding.
  const int num_mblocks = (seq + BM - 1) / BM;
  const int m_begin = n0 >= mask.len ? num_mblocks : (n0 < mask.pre ? 0 : n0 / BM);

  auto load_queries = [&](int mb, int buf) {
    const int m0 = mb * BM;
    LoadTile<BM, D, kThreads>(sQ + buf * BM * SD, q + in_offset + m0 * in_stride, in_stride, seq - m0, q);
    LoadTile<BM, D, kThreads>(sdO + buf * BM * SD, dout + out_offset + m0 * out_stride, out_stride, seq - m0, dout);
    for (int i = threadIdx.x; i < BM; i += kThreads) {
      const bool valid = m0 + i < seq;
      CpAsync4(sLse + buf * BM + i, valid ? lse_bh + m0 + i : lse, valid);
      CpAsync4(sDelta + buf * BM + i, valid ? delta_bh + m0 + i : delta, valid);
    }
  };

  float dk_acc[MT][D / 8][4], dv_acc[MT][D / 8][4];
  Zero(dk_acc);
  Zero(dv_acc);
  if (m_begin < num_mblocks) {
    // Keys past the example's length are zero-filled (and masked below).
    LoadTile<BN, D, kThreads>(sK, k + in_offset + n0 * in_stride, in_stride, mask.len - n0, k);
    LoadTile<BN, D, kThreads>(sV, v + in_offset + n0 * in_stride, in_stride, mask.len - n0, v);
    load_queries(m_begin, 0);
  }
  CpAsyncCommit();

  for (int mb = m_begin; mb < num_mblocks; ++mb) {
    const int buf = (mb - m_begin) & 1;
    if (mb + 1 < num_mblocks) {
      load_queries(mb + 1, buf ^ 1);
      CpAsyncCommit();
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();
    const int m0 = mb * BM;
    const bf16* q_tile = sQ + buf * BM * SD;
    const bf16* do_tile = sdO + buf * BM * SD;
    const float* lse_tile = sLse + buf * BM;
    const float* delta_tile = sDelta + buf * BM;

    // S^T (16 MT keys x BM queries) and P^T.
    float s[MT][BM / 8][4];
    Zero(s);
    MmaABt<D, BM, SD, MT>(s, sK + warp * 16 * MT * SD, q_tile, lane);
    const bool all_visible = m0 + BM <= seq && mask.AllVisible(m0, warp_k0 + 16 * MT);
#pragma unroll
    for (int j = 0; j < BM / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float lse_log2 = lse_tile[8 * j + 2 * t + (e & 1)] * kLog2e;
#pragma unroll
        for (int m = 0; m < MT; ++m) s[m][j][e] = Exp2(fmaf(s[m][j][e], scale_log2, -lse_log2));
      }
    if (!all_visible) {  // masked entries (and queries past seq) get P = 0, whatever exp gave
#pragma unroll
      for (int j = 0; j < BM / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int query = m0 + 8 * j + 2 * t + (e & 1);
#pragma unroll
          for (int m = 0; m < MT; ++m)
            s[m][j][e] = (query < seq) & mask.Visible(query, key_of(m, e >> 1)) ? s[m][j][e] : 0.f;
        }
    }

    {  // dV += P^T dout
      uint32_t a[MT][BM / 16][4];
#pragma unroll
      for (int m = 0; m < MT; ++m) AccumulatorToA<BM>(s[m], a[m]);
      MmaAregB<BM, D, SD, MT>(dv_acc, a, do_tile, lane);
    }

    // dP^T = V dout^T, then dS^T = P^T (dP^T - D) in place.
    float dp[MT][BM / 8][4];
    Zero(dp);
    MmaABt<D, BM, SD, MT>(dp, sV + warp * 16 * MT * SD, do_tile, lane);
#pragma unroll
    for (int j = 0; j < BM / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float d = delta_tile[8 * j + 2 * t + (e & 1)];
#pragma unroll
        for (int m = 0; m < MT; ++m) dp[m][j][e] = s[m][j][e] * (dp[m][j][e] - d);
      }

    {  // dK += dS^T Q (scaled at the end)
      uint32_t a[MT][BM / 16][4];
#pragma unroll
      for (int m = 0; m < MT; ++m) AccumulatorToA<BM>(dp[m], a[m]);
      MmaAregB<BM, D, SD, MT>(dk_acc, a, q_tile, lane);
    }
    __syncthreads();  // every warp is done with this buffer before it is refilled
  }
  CpAsyncWait<0>();
  __syncthreads();

  // Stage each warp's rows through its own K and V rows (only that warp read them).
  const int valid = seq - warp_k0;
  if (valid <= 0) return;
  bf16* stage_k = sK + warp * 16 * MT * SD;
  bf16* stage_v = sV + warp * 16 * MT * SD;
  AccumulatorToSmem<MT, D, SD>(dk_acc, scale, stage_k, lane);
  AccumulatorToSmem<MT, D, SD>(dv_acc, 1.f, stage_v, lane);
  __syncwarp();
  StoreWarpRows<16 * MT, D>(stage_k, dk + in_offset + warp_k0 * in_stride, in_stride, valid, lane);
  StoreWarpRows<16 * MT, D>(stage_v, dv + in_offset + warp_k0 * in_stride, in_stride, valid, lane);
}

template <int D, int WARPS, int MT, int BN>
struct DqConfig {
  static constexpr int kThreads = WARPS * 32;
  static constexpr int kBM = 16 * MT * WARPS;
  static constexpr int kSD = D + 8;
  // Q, dout [BM]; K, V double-buffered [2][BN].
  static constexpr int kSmemBytes = (2 * kBM + 4 * BN) * kSD * 2;
};

template <int D, int WARPS, int MT, int BN, int MIN_CTAS>
__global__ void __launch_bounds__(WARPS * 32, MIN_CTAS)
    DqKernel(const bf16* __restrict__ dout, const bf16* __restrict__ q, const bf16* __restrict__ k,
             const bf16* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ delta,
             bf16* __restrict__ dq, int heads, int seq, int prefix,
             const int32_t* __restrict__ prefix_lengths, const int32_t* __restrict__ lengths, float scale,
             float scale_log2, int num_qblocks) {
  using Cfg = DqConfig<D, WARPS, MT, BN>;
  constexpr int BM = Cfg::kBM, SD = Cfg::kSD, kThreads = Cfg::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sdO = sQ + BM * SD;
  bf16* sK = sdO + BM * SD;     // [2][BN][SD]
  bf16* sV = sK + 2 * BN * SD;  // [2][BN][SD]

  // Consecutive CTAs share a (batch, head) (L2 reuse of K and V); longest blocks first.
  const int bh = static_cast<int>(blockIdx.x) / num_qblocks;
  const int qb = num_qblocks - 1 - static_cast<int>(blockIdx.x) % num_qblocks;
  const int b = bh / heads, h = bh % heads;
  const int q0 = qb * BM;
  const ExampleMask mask(b, seq, prefix, prefix_lengths, lengths);

  // Rows of q, k, v, dq are in_stride apart, rows of dout out_stride (as DkDvKernel).
  const int out_stride = heads * D, in_stride = 3 * out_stride;
  const int64_t in_offset = static_cast<int64_t>(b) * seq * in_stride + static_cast<int64_t>(h) * D;
  const int64_t out_offset = static_cast<int64_t>(b) * seq * out_stride + static_cast<int64_t>(h) * D;
  const bf16* kg = k + in_offset;
  const bf16* vg = v + in_offset;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int warp_q0 = q0 + warp * 16 * MT;
  auto row_of = [&](int m, int r) { return warp_q0 + 16 * m + g + 8 * r; };
  float lse_log2[MT][2], row_delta[MT][2];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = row_of(m, r);
      const bool valid = row < seq;
      lse_log2[m][r] = valid ? lse[static_cast<int64_t>(bh) * seq + row] * kLog2e : 0.f;
      row_delta[m][r] = valid ? delta[static_cast<int64_t>(bh) * seq + row] : 0.f;
    }

  const int key_end = mask.KeyEnd(min(q0 + BM, seq));
  const int num_kblocks = (key_end + BN - 1) / BN;

  LoadTile<BM, D, kThreads>(sQ, q + in_offset + q0 * in_stride, in_stride, seq - q0, q);
  LoadTile<BM, D, kThreads>(sdO, dout + out_offset + q0 * out_stride, out_stride, seq - q0, dout);
  if (num_kblocks > 0) {
    LoadTile<BN, D, kThreads>(sK, kg, in_stride, mask.len, k);
    LoadTile<BN, D, kThreads>(sV, vg, in_stride, mask.len, v);
  }
  CpAsyncCommit();

  float dq_acc[MT][D / 8][4];
  Zero(dq_acc);
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
        for (int e = 0; e < 4; ++e) s[m][j][e] = Exp2(fmaf(s[m][j][e], scale_log2, -lse_log2[m][e >> 1]));
    if (!all_visible) {  // masked entries get P = 0, whatever exp gave
#pragma unroll
      for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int j = 0; j < BN / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            s[m][j][e] = mask.Visible(row_of(m, e >> 1), n0 + 8 * j + 2 * t + (e & 1)) ? s[m][j][e] : 0.f;
    }

    float dp[MT][BN / 8][4];
    Zero(dp);
    MmaABt<D, BN, SD, MT>(dp, sdO + warp * 16 * MT * SD, v_tile, lane);
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) dp[m][j][e] = s[m][j][e] * (dp[m][j][e] - row_delta[m][e >> 1]);

    uint32_t a[MT][BN / 16][4];
#pragma unroll
    for (int m = 0; m < MT; ++m) AccumulatorToA<BN>(dp[m], a[m]);
    MmaAregB<BN, D, SD, MT>(dq_acc, a, k_tile, lane);
    __syncthreads();
  }
  CpAsyncWait<0>();
  __syncthreads();

  bf16* stage = sQ + warp * 16 * MT * SD;  // the warp's own Q rows
  AccumulatorToSmem<MT, D, SD>(dq_acc, scale, stage, lane);
  __syncwarp();
  StoreWarpRows<16 * MT, D>(stage, dq + in_offset + warp_q0 * in_stride, in_stride, seq - warp_q0, lane);
}

template <typename Kernel>
void AllowSmem(Kernel kernel, int bytes) {
  if (bytes > 48 * 1024)
    BATON_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

template <int D, int KV_WARPS, int KV_MT, int KV_BM, int KV_CTAS, int Q_WARPS, int Q_MT, int Q_BN, int Q_CTAS>
void LaunchBackward(const bf16* dout, const bf16* q, const bf16* k, const bf16* v, const bf16* out, const float* lse,
                    bf16* dq, bf16* dk, bf16* dv, int batch, int seq, int heads, int prefix,
                    const int32_t* prefix_lengths, const int32_t* lengths) {
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  const float scale_log2 = static_cast<float>(kLog2e / std::sqrt(static_cast<double>(D)));
  const int64_t rows = static_cast<int64_t>(batch) * seq * heads;
  float* delta = static_cast<float*>(Workspace(static_cast<size_t>(rows) * sizeof(float), 1));
  cudaStream_t stream = ComputeStream();

  const int64_t delta_blocks = (rows * (D / 8) + 255) / 256;
  DeltaKernel<D><<<static_cast<unsigned>(delta_blocks), 256, 0, stream>>>(dout, out, delta, rows, seq, heads);
  BATON_CUDA_CHECK_LAUNCH("attention backward delta");

  using KvCfg = DkDvConfig<D, KV_WARPS, KV_MT, KV_BM>;
  auto kv_kernel = DkDvKernel<D, KV_WARPS, KV_MT, KV_BM, KV_CTAS>;
  AllowSmem(kv_kernel, KvCfg::kSmemBytes);
  const int64_t kv_blocks = static_cast<int64_t>((seq + KvCfg::kBN - 1) / KvCfg::kBN) * batch * heads;
  kv_kernel<<<static_cast<unsigned>(kv_blocks), KvCfg::kThreads, KvCfg::kSmemBytes, stream>>>(
      dout, q, k, v, lse, delta, dk, dv, heads, seq, prefix, prefix_lengths, lengths, scale, scale_log2);
  BATON_CUDA_CHECK_LAUNCH("attention backward dk/dv");

  using QCfg = DqConfig<D, Q_WARPS, Q_MT, Q_BN>;
  auto q_kernel = DqKernel<D, Q_WARPS, Q_MT, Q_BN, Q_CTAS>;
  AllowSmem(q_kernel, QCfg::kSmemBytes);
  const int num_qblocks = (seq + QCfg::kBM - 1) / QCfg::kBM;
  const int64_t q_blocks = static_cast<int64_t>(num_qblocks) * batch * heads;
  q_kernel<<<static_cast<unsigned>(q_blocks), QCfg::kThreads, QCfg::kSmemBytes, stream>>>(
      dout, q, k, v, lse, delta, dq, heads, seq, prefix, prefix_lengths, lengths, scale, scale_log2, num_qblocks);
  BATON_CUDA_CHECK_LAUNCH("attention backward dq");
}

}  // namespace
}  // namespace attention

void AttentionBackward(const Bf16* dout, const Bf16* qkv, const Bf16* out, const float* lse, Bf16* d_qkv,
                       int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, int64_t prefix,
                       const int32_t* prefix_lengths, const int32_t* lengths) {
  using attention::bf16;
  const int64_t hidden = heads * head_dim;
  const Bf16 *q = qkv, *k = qkv + hidden, *v = qkv + 2 * hidden;
  Bf16 *dq = d_qkv, *dk = d_qkv + hidden, *dv = d_qkv + 2 * hidden;
  attention::CheckAttentionArgs("AttentionBackward", head_dim, {dout, q, k, v, out, dq, dk, dv}, {3 * hidden, hidden},
                                batch, seq, heads);
  if (batch == 0 || seq == 0 || heads == 0) return;
  const int pre = static_cast<int>(std::min<int64_t>(std::max<int64_t>(prefix, 0), seq));
  auto c = [](const Bf16* p) { return reinterpret_cast<const bf16*>(p); };
  auto m = [](Bf16* p) { return reinterpret_cast<bf16*>(p); };
  const int B = static_cast<int>(batch), S = static_cast<int>(seq), H = static_cast<int>(heads);
  // <head_dim, dK/dV: warps, key tiles of 16 per warp, query block, CTAs per SM, dQ: warps, query
  // tiles of 16 per warp, key block, CTAs per SM>, the fastest variants timed on an H100 (as forward).
  switch (head_dim) {
    case 32:
      attention::LaunchBackward<32, 4, 2, 32, 2, 4, 1, 64, 4>(c(dout), c(q), c(k), c(v), c(out), lse, m(dq), m(dk),
                                                              m(dv), B, S, H, pre, prefix_lengths, lengths);
      break;
    case 64:
      attention::LaunchBackward<64, 4, 2, 32, 2, 4, 1, 64, 4>(c(dout), c(q), c(k), c(v), c(out), lse, m(dq), m(dk),
                                                              m(dv), B, S, H, pre, prefix_lengths, lengths);
      break;
    default:
      attention::LaunchBackward<128, 4, 1, 64, 2, 4, 2, 32, 2>(c(dout), c(q), c(k), c(v), c(out), lse, m(dq), m(dk),
                                                               m(dv), B, S, H, pre, prefix_lengths, lengths);
      break;
  }
}

}  // namespace baton::cuda
