// GoogleTest main for multi-rank suites run under mpirun: initialises MPI,
// runs every test on every rank (each test is collective), prints the full
// report on rank 0 and only failures elsewhere (prefixed with the rank), and
// exits non-zero on every rank if any rank failed.
#include <mpi.h>

#include <gtest/gtest.h>

#include <cstdio>

#include "runtime/mpi_world.h"

namespace {

// Prints failed assertions and failed tests of a non-zero rank.
class FailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.summary());
  }
  void OnTestEnd(const testing::TestInfo& info) override {
    if (info.result()->Failed()) std::fprintf(stderr, "[rank %d] FAILED %s.%s\n", rank_, info.test_suite_name(), info.name());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  baton::MpiWorld& world = baton::MpiWorld::Init(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  if (world.rank() != 0) {
    testing::TestEventListeners& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(world.rank()));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = failed;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (world.rank() == 0 && any_failed && !failed) std::fprintf(stderr, "tests failed on another rank (see above)\n");
  world.Finalize();
  return any_failed;
}
