// Matrix products through CBLAS (OpenBLAS): row-major c[m, n] = alpha op(a) op(b) + beta c.
#include <cblas.h>

#include "layers/cpu/kernels.h"

namespace baton::cpu {

template <>
void Matmul<float>(const float* a, bool ta, const float* b, bool tb, float* c, int64_t m, int64_t n, int64_t k,
                   float alpha, float beta) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a,
              ta ? m : k, b, tb ? k : n, beta, c, n);
}

template <>
void Matmul<double>(const double* a, bool ta, const double* b, bool tb, double* c, int64_t m, int64_t n, int64_t k,
                    double alpha, double beta) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a,
              ta ? m : k, b, tb ? k : n, beta, c, n);
}

}  // namespace baton::cpu
