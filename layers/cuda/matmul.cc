// Matrix products through cuBLASLt: row-major c[m, n] = alpha op(a) op(b) + beta c,
// fp32 accumulation (CUBLAS_COMPUTE_32F: no TF32 for f32 inputs).
//
// cuBLAS is column-major, and a row-major [r, c] matrix is the column-major
// [c, r] one, so we compute c^T = op(b)^T op(a)^T: cuBLAS's A is our b, its B
// is our a, its result the column-major [n, m] matrix that row-major c is.
//
// One cuBLASLt handle per process, created on first use. The descriptors,
// layouts and the heuristic's algorithm are cached per (shape, transposes,
// types, pointer alignments, beta == 0, epilogue), so steady-state steps do not
// query the heuristic again; with one stream and a workspace of our own,
// cuBLASLt gives the same bits on every run for a given algorithm.
//
// Epilogues (the fused ops at the end of kernels.h), bf16 in and out:
//   BIAS   y = x W^T + bias: the bias is added to the fp32 accumulator before the
//          one rounding to bf16 (Matmul then AddBias rounds twice).
//   DGELU  d_f = (dy W) * gelu'(f), f the GELU input (the epilogue's aux matrix).
//          cuBLASLt's GELU is the tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
//          as in gelu.cu (PyTorch's addmm_activation falls back to gelu(approximate="tanh")
//          where the GELU epilogue is unavailable); its fp32 evaluation need not give
//          GeluBackward's bits.
// Each falls back to the unfused kernels where the epilogue does not apply (bias or
// aux not 16-byte aligned, aux's leading dimension not a multiple of 8, or no
// algorithm for it).
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "layers/cuda/kernels.h"
#include "runtime/cuda_device.h"
#include "runtime/log.h"

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

// kBias's extra pointer is the bias (length n), kDGelu's the GELU input (the aux
// matrix, laid out like c).
enum class Epilogue { kNone, kBias, kDGelu };

struct Key {
  int64_t m, n, k;
  bool ta, tb;
  DType ab, c;
  uint32_t align_a, align_b, align_c;
  bool beta_zero;
  Epilogue epilogue = Epilogue::kNone;
  uint32_t align_extra = 0;  // of the bias or aux pointer (the heuristic depends on it)
  auto Tie() const {
    return std::tie(m, n, k, ta, tb, ab, c, align_a, align_b, align_c, beta_zero, epilogue, align_extra);
  }
  bool operator<(const Key& o) const { return Tie() < o.Tie(); }
};

const char* EpilogueName(Epilogue e) {
  switch (e) {
    case Epilogue::kNone: return "none";
    case Epilogue::kBias: return "bias";
    case Epilogue::kDGelu: return "dgelu";
  }
  return "?";
}

std::string ShapeText(const Key& key) {
  std::string text = ShapeText(key.m, key.n, key.k, key.ta, key.tb, key.ab, key.c) + ", alignments a " +
                     std::to_string(key.align_a) + ", b " + std::to_string(key.align_b) + ", c " +
                     std::to_string(key.align_c) + " bytes";
  if (key.epilogue != Epilogue::kNone)
    text += std::string(", epilogue ") + EpilogueName(key.epilogue) + " (pointer aligned to " +
            std::to_string(key.align_extra) + " bytes)";
  return text;
}

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t layout_a = nullptr, layout_b = nullptr, layout_c = nullptr;  // cuBLAS's A (our b), B (our a), C
  cublasLtMatmulAlgo_t algo{};
  bool ok = true;  // false: no algorithm for this epilogue (the caller runs the unfused kernels)
};

// The epilogue's pointer attribute (bias or aux) of desc.
void SetEpiloguePointer(cublasLtMatmulDesc_t desc, const Key& key, const void* extra) {
  const cublasLtMatmulDescAttributes_t attr =
      key.epilogue == Epilogue::kBias ? CUBLASLT_MATMUL_DESC_BIAS_POINTER : CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER;
  BATON_LT_CHECK(cublasLtMatmulDescSetAttribute(desc, attr, &extra, sizeof(extra)), ShapeText(key));
}

// Builds the descriptors for `key` and asks the heuristic for its best algorithm.
// `extra` (the bias or aux pointer of an epilogue) is set for the heuristic, which
// reads its alignment; each call sets its own.
Plan MakePlan(const Key& key, const void* extra) {
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
  if (key.epilogue != Epilogue::kNone) {
    const cublasLtEpilogue_t epilogue =
        key.epilogue == Epilogue::kBias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DGELU;
    BATON_LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
                   shape);
    if (key.epilogue == Epilogue::kBias) {
      const int32_t bias_type = CUDA_R_16BF;
      BATON_LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                    sizeof(bias_type)),
                     shape);
    } else {
      const int64_t aux_ld = key.n;  // the aux matrix is laid out like c: column-major [n, m]
      BATON_LT_CHECK(
          cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)), shape);
    }
    SetEpiloguePointer(p.desc, key, extra);
  }
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
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(Handle(), p.desc, p.layout_a, p.layout_b, p.layout_c,
                                                               p.layout_c, pref, 1, &result, &returned);
  BATON_LT_CHECK(cublasLtMatmulPreferenceDestroy(pref), shape);
  const bool found = status == CUBLAS_STATUS_SUCCESS && returned >= 1 && result.state == CUBLAS_STATUS_SUCCESS;
  if (!found && key.epilogue != Epilogue::kNone) {  // the caller falls back to the unfused kernels
    LogWarning("cuBLASLt has no algorithm for %s; using the unfused kernels there", shape.c_str());
    p.ok = false;
    return p;
  }
  BATON_LT_CHECK(status, shape);
  if (!found) Fail("cublasLtMatmulAlgoGetHeuristic", "no algorithm for " + shape, __FILE__, __LINE__);
  p.algo = result.algo;
  return p;
}

std::mutex& PlanMutex() {
  static std::mutex* mu = new std::mutex();
  return *mu;
}

// Callers that set an epilogue pointer on the plan's descriptor hold PlanMutex() until
// cublasLtMatmul has read it.
const Plan& PlanForLocked(const Key& key, const void* extra) {
  static std::map<Key, Plan>* plans = new std::map<Key, Plan>();  // lives as long as the process
  auto it = plans->find(key);
  if (it == plans->end()) it = plans->emplace(key, MakePlan(key, extra)).first;
  return it->second;  // std::map nodes never move
}

const Plan& PlanFor(const Key& key) {
  std::lock_guard<std::mutex> lock(PlanMutex());
  return PlanForLocked(key, nullptr);
}

// bf16 x bf16 -> bf16 c[m, n] = op(a) op(b) with `epilogue`; false (nothing enqueued) where
// it does not apply, and the caller runs the unfused kernels.
bool MatmulWithEpilogue(const Bf16* a, bool ta, const Bf16* b, bool tb, Bf16* c, int64_t m, int64_t n, int64_t k,
                        Epilogue epilogue, const Bf16* extra) {
  const uint32_t align_extra = Alignment(extra);
  if (m <= 0 || n <= 0 || k <= 0 || align_extra < 16) return false;
  if (epilogue == Epilogue::kDGelu && n % 8 != 0) return false;  // the aux leading dimension
  const Key key{m, n, k, ta, tb, DType::kBF16, DType::kBF16, Alignment(a), Alignment(b), Alignment(c), true,
                epilogue, align_extra};
  const float alpha = 1.f, beta = 0.f;
  std::lock_guard<std::mutex> lock(PlanMutex());
  const Plan& plan = PlanForLocked(key, extra);
  if (!plan.ok) return false;
  SetEpiloguePointer(plan.desc, key, extra);
  void* workspace = Workspace(kWorkspaceBytes, 0);
  BATON_LT_CHECK(cublasLtMatmul(Handle(), plan.desc, &alpha, b, plan.layout_a, a, plan.layout_b, &beta, c,
                                plan.layout_c, c, plan.layout_c, &plan.algo, workspace, kWorkspaceBytes,
                                ComputeStream()),
                 ShapeText(key));  // evaluated only on failure
  return true;
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

// ---- Fused ops (matmul epilogues)

// Off: LinearBackwardInputGelu runs Matmul then GeluBackward (the GELU derivative of gelu.cu).
constexpr bool kDGeluEpilogue = true;

void LinearForward(const Bf16* x, const Bf16* w, const Bf16* bias, Bf16* y, int64_t m, int64_t n, int64_t k) {
  if (bias != nullptr && MatmulWithEpilogue(x, false, w, true, y, m, n, k, Epilogue::kBias, bias)) return;
  Matmul(x, false, w, true, y, DType::kBF16, DType::kBF16, m, n, k, 1.f, 0.f);
  if (bias != nullptr) AddBias(bias, y, m, n);
}

void LinearBackwardInputGelu(const Bf16* dy, const Bf16* w, const Bf16* f, Bf16* d_f, int64_t m, int64_t n,
                             int64_t k) {
  if (kDGeluEpilogue && MatmulWithEpilogue(dy, false, w, false, d_f, m, n, k, Epilogue::kDGelu, f)) return;
  Matmul(dy, false, w, false, d_f, DType::kBF16, DType::kBF16, m, n, k, 1.f, 0.f);
  GeluBackward(d_f, f, d_f, m * n);  // in place: each element is read and written by one thread
}

}  // namespace baton::cuda
