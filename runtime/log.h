// Rank-aware logging. Info lines come from rank 0 only (one line per event for
// the whole job); warnings and errors come from every rank, prefixed with the
// rank and host so a user can tell which process had the problem.
#pragma once

#include <cstdarg>
#include <string>

namespace baton {

void SetLogIdentity(int rank, int world, const std::string& host);
int LogRank();
// "[rank 3/8 node17] " when the job has more than one rank, "" otherwise.
std::string LogPrefix();

void LogInfo(const char* fmt, ...) __attribute__((format(printf, 1, 2)));      // rank 0, stdout
void LogEveryRank(const char* fmt, ...) __attribute__((format(printf, 1, 2))); // every rank, stdout, with prefix
void LogWarning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));   // every rank, stderr
void LogError(const char* fmt, ...) __attribute__((format(printf, 1, 2)));     // every rank, stderr

}  // namespace baton
