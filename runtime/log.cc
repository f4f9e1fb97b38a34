#include "runtime/log.h"

#include <cstdio>

namespace baton {
namespace {
int g_rank = 0;
int g_world = 1;
std::string g_host;

void Emit(FILE* out, const std::string& prefix, const char* level, const char* fmt, va_list args) {
  char buf[4096];
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  std::fprintf(out, "%s%s%s\n", prefix.c_str(), level, buf);
  std::fflush(out);
}
}  // namespace

void SetLogIdentity(int rank, int world, const std::string& host) {
  g_rank = rank;
  g_world = world;
  g_host = host;
}

int LogRank() { return g_rank; }

std::string LogPrefix() {
  if (g_world <= 1) return "";
  return "[rank " + std::to_string(g_rank) + "/" + std::to_string(g_world) + " " + g_host + "] ";
}

void LogInfo(const char* fmt, ...) {
  if (g_rank != 0) return;
  va_list args;
  va_start(args, fmt);
  Emit(stdout, LogPrefix(), "", fmt, args);
  va_end(args);
}

void LogEveryRank(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  // The prefix names rank and host even in a one-rank job: this line says where things run.
  Emit(stdout, "[rank " + std::to_string(g_rank) + "/" + std::to_string(g_world) + " " + g_host + "] ", "", fmt, args);
  va_end(args);
}

void LogWarning(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  Emit(stderr, LogPrefix(), "warning: ", fmt, args);
  va_end(args);
}

void LogError(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  Emit(stderr, LogPrefix(), "error: ", fmt, args);
  va_end(args);
}

}  // namespace baton
