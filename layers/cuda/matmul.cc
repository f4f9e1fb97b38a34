// Matrix products through cuBLASLt: row-major c[m, n] = alpha op(a) op(b) + beta c,
// fp32 accumulation (CUBLAS_COMPUTE_32F: no TF32 for f32 inputs).
//
// cuBLAS is column-major, and a row-major [r, c] matrix is the column-major
// [c, r] one, so we compute c^T = op(b)^T op(a)^T: cuBLAS's A is our b, its B
// is our a, its result the column-major [n, m] matrix that row-major c is.
//
// One cuBLASLt handle per process, created on first use. The descriptors,
// layouts and the heuristic's algorithm are cached per (shape, transposes,
// types, pointer alignments, beta == 0), so steady-state steps do not query
// the heuristic again; with one stream and a workspace of our own, cuBLASLt
// gives the same bits on every run for a given algorithm.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "layers/cuda/kernels.h"
#include "runtime/cuda_device.h"

namespace baton::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

std::string ShapeText(int64_t m, int64_t n, int64_t k, bool ta, bool tb, DType ab, DType c) {
  return "c[" + std::to_string(m) + ", " + std::to_string(n) + "] (" + DTypeName(c) + ") = a" + (ta ? "^T" : "") +
         " b" + (tb ? "^T" : "") + " with k = " + std::to_string(k) + " (" + DTypeName(ab) + " inputs)";
}

[[noreturn]] void LtFail(const char* call, cublasStatus_t status, const std::string& shape, const char* file,
                         int line) {
  Fail(call, std::string(cublasLtGetStatusName(status)) + ": " + cublasLtGetStatusString(status) + ", for " + shape,
       file, line);
}

#define BATON_LT_CHECK(expr, shape)                                                           \
  do {                                                                                        \
    const cublasStatus_t _baton_status = (expr);                                              \
    if (_baton_status != CUBLAS_STATUS_SUCCESS) LtFail(#expr, _baton_status, shape, __FILE__, __LINE__); \
  } while (0)

cublasLtHandle_t Handle() {
  static const cublasLtHandle_t handle = [] {
    CurrentDevice();  // the device is selected before the handle binds to it
    cublasLtHandle_t h = nullptr;
    BATON_LT_CHECK(cublasLtCreate(&h), std::string("the cuBLASLt handle"));
    return h;
  }();
  return handle;
}

cudaDataType_t CudaType(DType t, const std::string& shape) {
  switch (t) {
    case DType::kBF16: return CUDA_R_16BF;
    case DType::kF32: return CUDA_R_32F;
    default: Fail("cuda::Matmul", std::string("unsupported dtype ") + DTypeName(t) + " for " + shape, __FILE__, __LINE__);
  }
}

// The largest power of two (at most 256) that divides the address.
uint32_t Alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && (a % align) != 0) align /= 2;
  return align;
}

struct Key {
  int64_t m, n, k;
  bool ta, tb;
  DType ab, c;
  uint32_t align_a, align_b, align_c;
  bool beta_zero;
  auto Tie() const { return std::tie(m, n, k, ta, tb, ab, c, align_a, align_b, align_c, beta_zero); }
  bool operator<(const Key& o) const { return Tie() < o.Tie(); }
};

std::string ShapeText(const Key& key) {
  return ShapeText(key.m, key.n, key.k, key.ta, key.tb, key.ab, key.c) + ", alignments a " +
         std::to_string(key.align_a) + ", b " + std::to_string(key.align_b) + ", c " + std::to_string(key.align_c) +
         " bytes";
}

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t layout_a = nullptr, layout_b = nullptr, layout_c = nullptr;  // cuBLAS's A (our b), B (our a), C
  cublasLtMatmulAlgo_t algo{};
};

// Builds the descriptors for `key` and asks the heuristic for its best algorithm.
Plan MakePlan(const Key& key) {
  const std::string shape = ShapeText(key);
  const cudaDataType_t ab = CudaType(key.ab, shape), ct = CudaType(key.c, shape);
  if (!((key.ab == DType::kBF16 && (key.c == DType::kBF16 || key.c == DType::kF32)) ||
        (key.ab == DType::kF32 && key.c == DType::kF32)))
    Fail("cuda::Matmul", "unsupported type combination: " + shape, __FILE__, __LINE__);
  Plan p;
  BATON_LT_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), shape);
  const cublasOperation_t op_a = key.tb ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS's A is our b
  const cublasOperation_t op_b = key.ta ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS's B is our a
  BATON_LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)), shape);
  BATON_LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)), shape);
  // cuBLAS's A as stored: op(A) = op(b)^T is [n, k]; b is row-major [k, n] (column-major [n, k]) or,
  // transposed, row-major [n, k] (column-major [k, n]).
  const uint64_t a_rows = key.tb ? key.k : key.n, a_cols = key.tb ? key.n : key.k;
  // cuBLAS's B as stored: op(B) = op(a)^T is [k, m]; a is row-major [m, k] (column-major [k, m]) or,
  // transposed, row-major [k, m] (column-major [m, k]).
  const uint64_t b_rows = key.ta ? key.m : key.k, b_cols = key.ta ? key.k : key.m;
  BATON_LT_CHECK(cublasLtMatrixLayoutCreate(&p.layout_a, ab, a_rows, a_cols, static_cast<int64_t>(a_rows)), shape);
  BATON_LT_CHECK(cublasLtMatrixLayoutCreate(&p.layout_b, ab, b_rows, b_cols, static_cast<int64_t>(b_rows)), shape);
  BATON_LT_CHECK(cublasLtMatrixLayoutCreate(&p.layout_c, ct, static_cast<uint64_t>(key.n),
                                            static_cast<uint64_t>(key.m), key.n),
                 shape);

  cublasLtMatmulPreference_t pref = nullptr;
  BATON_LT_CHECK(cublasLtMatmulPreferenceCreate(&pref), shape);
  const uint64_t max_workspace = kWorkspaceBytes;
  BATON_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_workspace,
                                                      sizeof(max_workspace)),
                 shape);
  // Pointers may be views (rows or columns of a tensor): the default assumes 256-byte alignment.
  const uint32_t align_a = key.align_b, align_b = key.align_a, align_c = key.align_c;  // cuBLAS's A is our b
  BATON_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a,
                                                      sizeof(align_a)),
                 shape);
  BATON_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b,
                                                      sizeof(align_b)),
                 shape);
  BATON_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c,
                                                      sizeof(align_c)),
                 shape);
  BATON_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c,
                                                      sizeof(align_c)),
                 shape);
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  BATON_LT_CHECK(cublasLtMatmulAlgoGetHeuristic(Handle(), p.desc, p.layout_a, p.layout_b, p.layout_c, p.layout_c, pref,
                                                1, &result, &returned),
                 shape);
  BATON_LT_CHECK(cublasLtMatmulPreferenceDestroy(pref), shape);
  if (returned < 1 || result.state != CUBLAS_STATUS_SUCCESS)
    Fail("cublasLtMatmulAlgoGetHeuristic", "no algorithm for " + shape, __FILE__, __LINE__);
  p.algo = result.algo;
  return p;
}

const Plan& PlanFor(const Key& key) {
  static std::mutex mu;
  static std::map<Key, Plan>* plans = new std::map<Key, Plan>();  // lives as long as the process
  std::lock_guard<std::mutex> lock(mu);
  auto it = plans->find(key);
  if (it == plans->end()) it = plans->emplace(key, MakePlan(key)).first;
  return it->second;  // std::map nodes never move
}

}  // namespace

void Matmul(const void* a, bool ta, const void* b, bool tb, void* c, DType ab_type, DType c_type, int64_t m,
            int64_t n, int64_t k, float alpha, float beta) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // c = beta * c
    const size_t bytes = static_cast<size_t>(m) * static_cast<size_t>(n) * SizeOf(c_type);
    if (beta == 0.f) {
      BATON_CUDA_CHECK(cudaMemsetAsync(c, 0, bytes, ComputeStream()));
    } else if (c_type == DType::kF32) {
      if (beta != 1.f) Scale(static_cast<float*>(c), m * n, beta);
    } else if (beta != 1.f) {
      Fail("cuda::Matmul", "k = 0 with beta != 0, 1 for " + ShapeText(m, n, k, ta, tb, ab_type, c_type), __FILE__,
           __LINE__);
    }
    return;
  }
  const Key key{m, n, k, ta, tb, ab_type, c_type, Alignment(a), Alignment(b), Alignment(c), beta == 0.f};
  const Plan& plan = PlanFor(key);
  void* workspace = Workspace(kWorkspaceBytes, 0);
  BATON_LT_CHECK(cublasLtMatmul(Handle(), plan.desc, &alpha, b, plan.layout_a, a, plan.layout_b, &beta, c,
                                plan.layout_c, c, plan.layout_c, &plan.algo, workspace, kWorkspaceBytes,
                                ComputeStream()),
                 ShapeText(key));  // evaluated only on failure
}

}  // namespace baton::cuda
