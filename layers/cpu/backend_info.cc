// The CPU backend's threading: set from the run config, reported in the run log.
#include <cblas.h>
#include <omp.h>

#include <string>

#include "layers/ops.h"

namespace baton::ops {

std::string BackendDescription() {
  return "CPU (fp32), " + std::to_string(omp_get_max_threads()) + " OpenMP threads, OpenBLAS with " +
         std::to_string(openblas_get_num_threads()) + " threads";
}

void SetBackendThreads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

}  // namespace baton::ops
