// The MPI bootstrap: initialises MPI once per process, learns rank, world
// size and host, and sets the log identity. A failing rank calls Abort, which
// takes every rank of the job down instead of leaving the others hanging.
#pragma once

#include <string>

#include "runtime/status.h"

namespace baton {

class MpiWorld {
 public:
  // Initialises MPI (idempotent) and returns the process-wide world.
  static MpiWorld& Init(int* argc, char*** argv);
  static bool initialized();

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& host() const { return host_; }
  // This rank's index among the ranks of its node (from MPI's shared-memory
  // communicator): which GPU it uses, one rank per GPU.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }

  // Ends the whole job with `code` after printing `status` on this rank.
  [[noreturn]] void Abort(const Status& status, int code = 1) const;
  // Orderly shutdown (MPI_Finalize).
  void Finalize();

 private:
  MpiWorld() = default;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::string host_;
};

}  // namespace baton
