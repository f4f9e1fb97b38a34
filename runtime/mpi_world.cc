#include "runtime/mpi_world.h"

#include <mpi.h>

#include <cstdlib>

#include "runtime/log.h"

namespace baton {
namespace {
MpiWorld* g_world = nullptr;

void CheckMpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  LogError("%s failed: %s", what, msg);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}
}  // namespace

MpiWorld& MpiWorld::Init(int* argc, char*** argv) {
  if (g_world) return *g_world;
  int already = 0;
  CheckMpi(MPI_Initialized(&already), "MPI_Initialized");
  if (!already) CheckMpi(MPI_Init(argc, argv), "MPI_Init");
  // Errors come back as codes so that every call can be checked and reported.
  CheckMpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  g_world = new MpiWorld();
  CheckMpi(MPI_Comm_rank(MPI_COMM_WORLD, &g_world->rank_), "MPI_Comm_rank");
  CheckMpi(MPI_Comm_size(MPI_COMM_WORLD, &g_world->size_), "MPI_Comm_size");
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  CheckMpi(MPI_Get_processor_name(name, &len), "MPI_Get_processor_name");
  g_world->host_.assign(name, static_cast<size_t>(len));
  MPI_Comm node;
  CheckMpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_world->rank_, MPI_INFO_NULL, &node),
           "MPI_Comm_split_type");
  CheckMpi(MPI_Comm_rank(node, &g_world->local_rank_), "MPI_Comm_rank (node)");
  CheckMpi(MPI_Comm_size(node, &g_world->local_size_), "MPI_Comm_size (node)");
  CheckMpi(MPI_Comm_free(&node), "MPI_Comm_free");
  SetLogIdentity(g_world->rank_, g_world->size_, g_world->host_);
  return *g_world;
}

bool MpiWorld::initialized() { return g_world != nullptr; }

void MpiWorld::Abort(const Status& status, int code) const {
  LogError("%s", status.ToString().c_str());
  if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
  MPI_Finalize();
  std::exit(code);
}

void MpiWorld::Finalize() { CheckMpi(MPI_Finalize(), "MPI_Finalize"); }

}  // namespace baton
